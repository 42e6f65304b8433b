//! What the supergraph's security directives require of each field and type:
//! `@authenticated`, `@requiresScopes` and `@policy`, read once when the supergraph loads,
//! under whatever names its `@link`s give them (see [`crate::authorize`] for how requests are
//! checked against them).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use apollo_compiler::ast::Value;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node, Schema};

use crate::operation::{Field, Selection};

/// What one schema element requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    pub authenticated: bool,
    /// One entry per `@requiresScopes`: all must hold; each holds when one of its groups does.
    pub scopes: Vec<Vec<Vec<String>>>,
    /// One entry per `@policy`, alike, over policy names.
    pub policies: Vec<Vec<Vec<String>>>,
}

impl Requirement {
    pub(crate) fn is_empty(&self) -> bool {
        !self.authenticated && self.scopes.is_empty() && self.policies.is_empty()
    }
}

/// The security specs the gateway implements, by their `@link` URL without the version, and the
/// versions it knows. A supergraph that links another spec for `SECURITY` or `EXECUTION` is
/// refused: its rules would silently not be enforced.
pub(crate) const IMPLEMENTED: [(&str, &[&str]); 5] = [
    (
        "https://specs.apollo.dev/join",
        &["v0.1", "v0.2", "v0.3", "v0.4", "v0.5"],
    ),
    ("https://specs.apollo.dev/inaccessible", &["v0.1", "v0.2"]),
    ("https://specs.apollo.dev/authenticated", &["v0.1"]),
    ("https://specs.apollo.dev/requiresScopes", &["v0.1"]),
    ("https://specs.apollo.dev/policy", &["v0.1"]),
];

/// Every requirement a supergraph states.
#[derive(Debug, Default)]
pub struct Requirements {
    pub(crate) types: HashMap<Name, Arc<Requirement>>,
    pub(crate) fields: HashMap<(Name, Name), Arc<Requirement>>,
    /// Every policy name the supergraph uses.
    pub policy_names: BTreeSet<String>,
}

/// The names the three directives go by in one supergraph.
pub(crate) struct DirectiveNames {
    authenticated: Option<String>,
    requires_scopes: Option<String>,
    policy: Option<String>,
}

impl Requirements {
    /// Reads the security directives of `schema` (a supergraph), after checking that every
    /// spec it links for security or execution is one the gateway implements. `requires` gives
    /// the `@requires` field sets each field has in some subgraph.
    ///
    /// Two rules make what is stated hold however a field is reached:
    /// - what an interface or an interface's field requires, each implementation (and its
    ///   field) requires too, so a fragment on the object type cannot go around it;
    /// - a field that `@requires` others requires what they do (composition's transitive
    ///   auth requirements): the gateway fetches required fields for the subgraph, and a caller
    ///   who may not read them must not have them computed on.
    pub fn of<'a>(
        schema: &apollo_compiler::validation::Valid<Schema>,
        requires: impl Iterator<Item = (&'a Name, &'a Name, &'a str)>,
    ) -> Result<Self, String> {
        let names = check_links(schema)?;
        let mut requirements = Self::default();
        for (type_name, ty) in &schema.types {
            if ty.is_built_in() {
                continue;
            }
            let own = requirement(ty.directives().iter().map(|d| &***d), &names);
            if !own.is_empty() {
                requirements.note_policies(&own);
                requirements.types.insert(type_name.clone(), Arc::new(own));
            }
            let fields = match ty {
                ExtendedType::Object(object) => &object.fields,
                ExtendedType::Interface(interface) => &interface.fields,
                _ => continue,
            };
            for (field_name, field) in fields {
                let own = requirement(field.directives.iter().map(|d| &**d), &names);
                if !own.is_empty() {
                    requirements.note_policies(&own);
                    requirements
                        .fields
                        .insert((type_name.clone(), field_name.clone()), Arc::new(own));
                }
            }
        }
        requirements.inherit_from_interfaces(schema);
        if !requirements.is_empty() {
            requirements.add_required(schema, requires)?;
        }
        Ok(requirements)
    }

    /// Adds each interface's requirements (and its fields') to its implementations.
    pub(crate) fn inherit_from_interfaces(&mut self, schema: &Schema) {
        for (type_name, ty) in &schema.types {
            let (interfaces, fields) = match ty {
                ExtendedType::Object(object) => (&object.implements_interfaces, &object.fields),
                ExtendedType::Interface(interface) => {
                    (&interface.implements_interfaces, &interface.fields)
                }
                _ => continue,
            };
            for interface in interfaces {
                if let Some(inherited) = self.types.get(&interface.name).cloned() {
                    merge_into(self.types.entry(type_name.clone()).or_default(), &inherited);
                }
                for field_name in fields.keys() {
                    let key = (interface.name.clone(), field_name.clone());
                    if let Some(inherited) = self.fields.get(&key).cloned() {
                        let own = (type_name.clone(), field_name.clone());
                        merge_into(self.fields.entry(own).or_default(), &inherited);
                    }
                }
            }
        }
    }

    /// Adds to each field with `@requires` what its required fields require, until nothing
    /// changes (a required field may require others in turn).
    pub(crate) fn add_required<'a>(
        &mut self,
        schema: &apollo_compiler::validation::Valid<Schema>,
        requires: impl Iterator<Item = (&'a Name, &'a Name, &'a str)>,
    ) -> Result<(), String> {
        let mut sets = Vec::new();
        for (ty, field, source) in requires {
            let fields = crate::operation::field_set(schema, ty, source)?;
            sets.push(((ty.clone(), field.clone()), ty.clone(), fields));
        }
        for _ in 0..=sets.len() {
            let mut changed = false;
            for (key, ty, fields) in &sets {
                let mut needed = Requirement::default();
                self.collect_set(ty, fields, &mut needed);
                if needed.is_empty() {
                    continue;
                }
                let current = self.fields.entry(key.clone()).or_default();
                let before = (**current).clone();
                merge_into(current, &needed);
                changed |= **current != before;
            }
            if !changed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// What reading `fields` of `ty` requires.
    pub(crate) fn collect_set(&self, ty: &Name, fields: &[Field], into: &mut Requirement) {
        for field in fields {
            if let Some(found) = self.fields.get(&(ty.clone(), field.name.clone())) {
                merge_requirement(into, found);
            }
            if let Some(found) = self.types.get(field.type_name()) {
                merge_requirement(into, found);
            }
            let child = field.type_name().clone();
            self.collect_selections(&child, &field.selections, into);
        }
    }

    pub(crate) fn collect_selections(
        &self,
        ty: &Name,
        selections: &[Selection],
        into: &mut Requirement,
    ) {
        for selection in selections {
            match selection {
                Selection::Field(field) => {
                    self.collect_set(ty, std::slice::from_ref(field), into);
                }
                Selection::Fragment(fragment) => {
                    if let Some(found) = self.types.get(&fragment.on) {
                        merge_requirement(into, found);
                    }
                    self.collect_selections(&fragment.on, &fragment.selections, into);
                }
            }
        }
    }

    pub(crate) fn note_policies(&mut self, requirement: &Requirement) {
        for directive in &requirement.policies {
            for group in directive {
                self.policy_names.extend(group.iter().cloned());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.fields.is_empty()
    }
}

/// `requirement` made to require `more` as well.
pub(crate) fn merge_into(requirement: &mut Arc<Requirement>, more: &Requirement) {
    let requirement = Arc::make_mut(requirement);
    merge_requirement(requirement, more);
}

pub(crate) fn merge_requirement(requirement: &mut Requirement, more: &Requirement) {
    requirement.authenticated |= more.authenticated;
    for scopes in &more.scopes {
        if !requirement.scopes.contains(scopes) {
            requirement.scopes.push(scopes.clone());
        }
    }
    for policies in &more.policies {
        if !requirement.policies.contains(policies) {
            requirement.policies.push(policies.clone());
        }
    }
}

/// Checks the supergraph's `@link`s and finds the names the security directives go by.
pub(crate) fn check_links(schema: &Schema) -> Result<DirectiveNames, String> {
    let mut names = DirectiveNames {
        authenticated: None,
        requires_scopes: None,
        policy: None,
    };
    for link in schema.schema_definition.directives.get_all("link") {
        let text = |name: &str| {
            link.specified_argument_by_name(name)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        let Some(url) = text("url") else { continue };
        let (identity, version) = url
            .trim_end_matches('/')
            .rsplit_once('/')
            .unwrap_or((url.as_str(), ""));
        let purpose = link
            .specified_argument_by_name("for")
            .and_then(|value| value.as_enum())
            .map(|value| value.as_str().to_owned());
        let implemented = IMPLEMENTED
            .iter()
            .find(|(known, _)| *known == identity)
            .map(|(_, versions)| *versions);
        if let Some(purpose) = purpose.as_deref()
            && (purpose == "SECURITY" || purpose == "EXECUTION")
        {
            match implemented {
                None => {
                    return Err(format!(
                        "the supergraph links {url} for {purpose}, a spec this gateway does not implement; it refuses to serve rather than ignore it"
                    ));
                }
                Some(versions) if !versions.contains(&version) => {
                    return Err(format!(
                        "the supergraph links {url} for {purpose}; this gateway implements {identity} only in versions {}",
                        versions.join(", ")
                    ));
                }
                Some(_) => {}
            }
        }
        let spec = identity.rsplit('/').next().unwrap_or_default();
        let slot = match spec {
            "authenticated" => &mut names.authenticated,
            "requiresScopes" => &mut names.requires_scopes,
            "policy" => &mut names.policy,
            _ => continue,
        };
        if implemented.is_some_and(|versions| !versions.contains(&version)) {
            return Err(format!(
                "the supergraph links {url}; this gateway implements {identity} only in versions {}",
                implemented.unwrap_or_default().join(", ")
            ));
        }
        let name = crate::links::directive_name(link, spec, spec);
        *slot = Some(name);
    }
    Ok(names)
}

/// What `directives` require, by the names the supergraph gives the security directives.
pub(crate) fn requirement<'a>(
    directives: impl Iterator<Item = &'a apollo_compiler::ast::Directive>,
    names: &DirectiveNames,
) -> Requirement {
    let mut requirement = Requirement::default();
    for directive in directives {
        let name = directive.name.as_str();
        if names.authenticated.as_deref() == Some(name) {
            requirement.authenticated = true;
        } else if names.requires_scopes.as_deref() == Some(name) {
            requirement
                .scopes
                .push(groups(directive.specified_argument_by_name("scopes")));
        } else if names.policy.as_deref() == Some(name) {
            requirement
                .policies
                .push(groups(directive.specified_argument_by_name("policies")));
        }
    }
    requirement
}

/// `[["a", "b"], ["c"]]` as lists of strings.
pub(crate) fn groups(value: Option<&Node<Value>>) -> Vec<Vec<String>> {
    value
        .and_then(|value| value.as_list())
        .into_iter()
        .flatten()
        .map(|group| {
            group
                .as_list()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}
