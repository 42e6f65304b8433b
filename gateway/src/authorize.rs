//! Authorization by the supergraph's security directives: `@authenticated`,
//! `@requiresScopes(scopes: [[…]])` and `@policy(policies: [[…]])` on fields, objects,
//! interfaces, scalars and enums, as composition puts them into the supergraph (linked by the
//! `authenticated`, `requiresScopes` and `policy` specs, under whatever names the links give
//! them).
//!
//! A request is authorized after planning's input is known and before anything is fetched:
//! every selection the operation makes is checked once (however many list items it will
//! cover) against the requirements of its field, of the type it returns, and — for a field
//! selected through an interface — of that field on every implementation. A selection that
//! fails is taken out of the operation the plan is made for, so no subgraph is asked for it,
//! and written as `null` with an `UNAUTHORIZED_FIELD_OR_TYPE` error at its path; the rest
//! runs. A fragment on a type whose requirements fail is taken out the same way.
//!
//! Scopes: one of the outer list's groups must be held whole (OR of ANDs). Policies: the same
//! over policy names, each name a Rego rule decided by [`crate::policy`] with the session, the
//! operation, the field's coordinate, its arguments and the subgraphs that resolve it as input.
//! Decisions are made once per selection and memoized per request by policy, coordinate and
//! arguments.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node, Schema};

use crate::auth::Session;
use crate::operation::{Field, Normalized, Selection};
use crate::supergraph::Supergraph;

/// The code of the error a denied selection gets.
pub const UNAUTHORIZED: &str = "UNAUTHORIZED_FIELD_OR_TYPE";

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
    fn is_empty(&self) -> bool {
        !self.authenticated && self.scopes.is_empty() && self.policies.is_empty()
    }
}

/// The security specs the gateway implements, by their `@link` URL without the version, and the
/// versions it knows. A supergraph that links another spec for `SECURITY` or `EXECUTION` is
/// refused: its rules would silently not be enforced.
const IMPLEMENTED: [(&str, &[&str]); 5] = [
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
    types: HashMap<Name, Arc<Requirement>>,
    fields: HashMap<(Name, Name), Arc<Requirement>>,
    /// Every policy name the supergraph uses.
    pub policy_names: BTreeSet<String>,
}

/// The names the three directives go by in one supergraph.
struct DirectiveNames {
    authenticated: Option<String>,
    requires_scopes: Option<String>,
    policy: Option<String>,
}

impl Requirements {
    /// Reads the security directives of `schema` (a supergraph), after checking that every
    /// spec it links for security or execution is one the gateway implements.
    pub fn of(schema: &Schema) -> Result<Self, String> {
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
        Ok(requirements)
    }

    fn note_policies(&mut self, requirement: &Requirement) {
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

/// Checks the supergraph's `@link`s and finds the names the security directives go by.
fn check_links(schema: &Schema) -> Result<DirectiveNames, String> {
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
        // The directive named like the spec is `@{as}` (or `@{spec}`), unless imported under
        // another name.
        let mut name = text("as").unwrap_or_else(|| spec.to_owned());
        if let Some(imports) = link
            .specified_argument_by_name("import")
            .and_then(|value| value.as_list())
        {
            for import in imports {
                match import.as_ref() {
                    Value::String(imported) if imported.trim_start_matches('@') == spec => {
                        spec.clone_into(&mut name);
                    }
                    Value::Object(fields) => {
                        let field = |key: &str| {
                            fields
                                .iter()
                                .find(|(name, _)| name == key)
                                .and_then(|(_, value)| value.as_str())
                        };
                        if field("name").map(|n| n.trim_start_matches('@')) == Some(spec) {
                            field("as")
                                .unwrap_or(spec)
                                .trim_start_matches('@')
                                .clone_into(&mut name);
                        }
                    }
                    _ => {}
                }
            }
        }
        *slot = Some(name);
    }
    Ok(names)
}

/// What `directives` require, by the names the supergraph gives the security directives.
fn requirement<'a>(
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
fn groups(value: Option<&Node<Value>>) -> Vec<Vec<String>> {
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

/// A selection of an operation that has requirements to check.
#[derive(Debug)]
pub struct Guard {
    /// The selection's number in the operation, counted in pre-order (see [`mark`]).
    id: u32,
    /// `Type.field`, or the type of a fragment.
    coordinate: String,
    arguments: Vec<Node<apollo_compiler::ast::Argument>>,
    /// The subgraphs that resolve the field.
    subgraphs: Vec<String>,
    requirements: Vec<Arc<Requirement>>,
}

/// The selections of `operation` that have requirements, for [`decide`] to check per request.
pub fn guards(
    requirements: &Requirements,
    supergraph: &Supergraph,
    operation: &Normalized,
) -> Vec<Guard> {
    let mut finder = Finder {
        requirements,
        supergraph,
        next: 0,
        guards: Vec::new(),
    };
    if requirements.is_empty() {
        return Vec::new();
    }
    for field in &operation.fields {
        finder.field(field, &operation.root_type, true);
    }
    finder.guards
}

struct Finder<'a> {
    requirements: &'a Requirements,
    supergraph: &'a Supergraph,
    next: u32,
    guards: Vec<Guard>,
}

impl Finder<'_> {
    fn field(&mut self, field: &Field, parent: &Name, root: bool) {
        let id = self.next;
        self.next += 1;
        if !field.name.starts_with("__") {
            let mut found = Vec::new();
            let key = (parent.clone(), field.name.clone());
            found.extend(self.requirements.fields.get(&key).cloned());
            found.extend(self.requirements.types.get(field.type_name()).cloned());
            if root {
                found.extend(self.requirements.types.get(parent).cloned());
            }
            // Through an interface: what the field, or the type itself, requires on any
            // implementation (any of them may be what the list holds).
            if !crate::operation::is_object(&self.supergraph.schema, parent) {
                for implementation in self.supergraph.possible_types(parent) {
                    found.extend(self.requirements.types.get(&implementation).cloned());
                    let key = (implementation, field.name.clone());
                    found.extend(self.requirements.fields.get(&key).cloned());
                }
            }
            if !found.is_empty() {
                self.guards.push(Guard {
                    id,
                    coordinate: format!("{parent}.{}", field.name),
                    arguments: field.arguments.clone(),
                    subgraphs: self
                        .supergraph
                        .field_subgraphs(parent, &field.name)
                        .into_iter()
                        .map(|index| self.supergraph.subgraphs[index].name.clone())
                        .collect(),
                    requirements: found,
                });
            }
        }
        let child = field.type_name().clone();
        self.selections(&field.selections, &child);
    }

    fn selections(&mut self, selections: &[Selection], parent: &Name) {
        for selection in selections {
            match selection {
                Selection::Field(field) => self.field(field, parent, false),
                Selection::Fragment(fragment) => {
                    let id = self.next;
                    self.next += 1;
                    if let Some(requirement) = self.requirements.types.get(&fragment.on) {
                        self.guards.push(Guard {
                            id,
                            coordinate: fragment.on.to_string(),
                            arguments: Vec::new(),
                            subgraphs: Vec::new(),
                            requirements: vec![requirement.clone()],
                        });
                    }
                    self.selections(&fragment.selections, &fragment.on);
                }
            }
        }
    }
}

/// Decides policies by name for an input (see [`crate::policy`]).
pub trait Decider: Send + Sync {
    /// Whether `policy` allows the access `input` describes; an error denies.
    fn allows(&self, policy: &str, input: &serde_json::Value) -> Result<bool, String>;
}

/// What [`decide`] needs to know about the request.
pub struct Context<'a> {
    pub session: Option<&'a Session>,
    pub operation_name: Option<&'a str>,
    pub kind: OperationType,
    pub variables: &'a JsonMap,
    pub decider: Option<&'a dyn Decider>,
}

/// The numbers of the guarded selections the request may not make.
pub fn decide(guards: &[Guard], context: &Context<'_>) -> Vec<u32> {
    let mut memo: HashMap<(String, String, String), bool> = HashMap::new();
    let session_json = context
        .session
        .map_or(serde_json::Value::Null, Session::to_json);
    let mut denied = Vec::new();
    for guard in guards {
        let allowed = guard
            .requirements
            .iter()
            .all(|requirement| allows(requirement, guard, context, &session_json, &mut memo));
        if !allowed {
            denied.push(guard.id);
        }
    }
    denied
}

fn allows(
    requirement: &Requirement,
    guard: &Guard,
    context: &Context<'_>,
    session_json: &serde_json::Value,
    memo: &mut HashMap<(String, String, String), bool>,
) -> bool {
    if (requirement.authenticated || !requirement.scopes.is_empty()) && context.session.is_none() {
        return false;
    }
    let held = |scope: &String| {
        context
            .session
            .is_some_and(|session| session.scopes.contains(scope))
    };
    let scopes = requirement
        .scopes
        .iter()
        .all(|groups| groups.iter().any(|group| group.iter().all(held)));
    if !scopes {
        return false;
    }
    if requirement.policies.is_empty() {
        return true;
    }
    let Some(decider) = context.decider else {
        return false;
    };
    let arguments: serde_json::Map<String, serde_json::Value> = guard
        .arguments
        .iter()
        .map(|argument| {
            (
                argument.name.to_string(),
                value_json(&argument.value, context.variables),
            )
        })
        .collect();
    let arguments_key = serde_json::Value::Object(arguments.clone()).to_string();
    let (type_name, field_name) = guard
        .coordinate
        .split_once('.')
        .unwrap_or((guard.coordinate.as_str(), ""));
    let input = serde_json::json!({
        "session": session_json,
        "operation": {
            "name": context.operation_name,
            "kind": match context.kind {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            },
        },
        "coordinate": guard.coordinate,
        "type": type_name,
        "field": field_name,
        "arguments": arguments,
        "subgraph": guard.subgraphs.first(),
        "subgraphs": guard.subgraphs,
    });
    let mut decide = |policy: &String| {
        let key = (
            policy.clone(),
            guard.coordinate.clone(),
            arguments_key.clone(),
        );
        if let Some(known) = memo.get(&key) {
            return *known;
        }
        let allowed = match decider.allows(policy, &input) {
            Ok(allowed) => allowed,
            Err(error) => {
                tracing::warn!(%policy, coordinate = %guard.coordinate, %error, "policy evaluation failed; denied");
                false
            }
        };
        memo.insert(key, allowed);
        allowed
    };
    requirement
        .policies
        .iter()
        .all(|groups| groups.iter().any(|group| group.iter().all(&mut decide)))
}

/// An argument's value as JSON, variables replaced by the request's values.
fn value_json(value: &Value, variables: &JsonMap) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Enum(name) => serde_json::Value::from(name.as_str()),
        Value::Variable(name) => variables
            .get(name.as_str())
            .map_or(serde_json::Value::Null, json_of),
        Value::String(text) => serde_json::Value::from(text.as_str()),
        Value::Float(number) => number
            .try_to_f64()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Int(number) => number
            .try_to_i32()
            .map(serde_json::Value::from)
            .or_else(|_| number.try_to_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        Value::List(items) => items
            .iter()
            .map(|item| value_json(item, variables))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| (name.to_string(), value_json(value, variables)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

fn json_of(value: &JsonValue) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// `operation` with the selections numbered in `denied` marked (to be written as `null` with an
/// error), and the operation to plan: the same without them. Fields directly inside a denied
/// fragment are marked denied.
pub fn mark(operation: &Normalized, denied: &[u32]) -> (Normalized, Normalized) {
    let mut next = 0;
    let mut marked = operation.clone();
    for field in &mut marked.fields {
        mark_field(field, denied, &mut next, false);
    }
    let mut pruned = marked.clone();
    pruned.fields.retain(|field| !field.denied);
    for field in &mut pruned.fields {
        prune(&mut field.selections);
    }
    (marked, pruned)
}

fn mark_field(field: &mut Field, denied: &[u32], next: &mut u32, inherited: bool) {
    let id = *next;
    *next += 1;
    field.denied = inherited || denied.contains(&id);
    mark_selections(&mut field.selections, denied, next);
}

fn mark_selections(selections: &mut [Selection], denied: &[u32], next: &mut u32) {
    mark_within(selections, denied, next, false);
}

/// Marks `selections`; `inherited` when they are inside a denied fragment.
fn mark_within(selections: &mut [Selection], denied: &[u32], next: &mut u32, inherited: bool) {
    for selection in selections {
        match selection {
            Selection::Field(field) => mark_field(field, denied, next, inherited),
            Selection::Fragment(fragment) => {
                let id = *next;
                *next += 1;
                let fragment_denied = inherited || denied.contains(&id);
                mark_within(&mut fragment.selections, denied, next, fragment_denied);
                fragment.denied = fragment_denied;
            }
        }
    }
}

fn prune(selections: &mut Vec<Selection>) {
    selections.retain(|selection| match selection {
        Selection::Field(field) => !field.denied,
        Selection::Fragment(fragment) => !fragment.denied,
    });
    for selection in selections {
        match selection {
            Selection::Field(field) => prune(&mut field.selections),
            Selection::Fragment(fragment) => prune(&mut fragment.selections),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERGRAPH: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.5", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)
  @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", as: "scopes", for: SECURITY)
  @link(url: "https://specs.apollo.dev/policy/v0.1", import: [{name: "@policy", as: "@rule"}], for: SECURITY)
{
  query: Query
}
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
directive @scopes(scopes: [[scopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
directive @rule(policies: [[policy__Policy!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM
scalar join__FieldSet
scalar link__Import
scalar scopes__Scope
scalar policy__Policy
enum link__Purpose { SECURITY EXECUTION }
enum join__Graph { A @join__graph(name: "a", url: "http://a") }
type Query @join__type(graph: A) {
  me: User
  secrets: [Secret] @authenticated
  shape: Shape
}
type User @join__type(graph: A) {
  id: ID!
  email: String @scopes(scopes: [["read:email"], ["admin"]])
  salary: Int @rule(policies: [["hr.reader"]])
}
type Secret @join__type(graph: A) @authenticated { value: String }
interface Shape @join__type(graph: A) { area: Float name: String }
type Circle implements Shape @join__type(graph: A) { area: Float @authenticated radius: Float name: String }
type Vault implements Shape @join__type(graph: A) @authenticated { area: Float name: String }
"#;

    fn supergraph() -> Supergraph {
        Supergraph::parse(SUPERGRAPH).unwrap()
    }

    fn operation(supergraph: &Supergraph, query: &str) -> Normalized {
        let document = apollo_compiler::ExecutableDocument::parse_and_validate(
            &supergraph.api_schema,
            query,
            "q.graphql",
        )
        .unwrap();
        let operation = document.operations.get(None).unwrap();
        crate::operation::normalize(&supergraph.schema, &document, operation, &JsonMap::new())
    }

    struct Allow(&'static [&'static str]);
    impl Decider for Allow {
        fn allows(&self, policy: &str, input: &serde_json::Value) -> Result<bool, String> {
            assert_eq!(input["coordinate"], "User.salary");
            Ok(self.0.contains(&policy))
        }
    }

    fn session(scopes: &[&str]) -> Session {
        Session {
            subject: Some("1".into()),
            issuer: "https://id".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: Vec::new(),
            claims: serde_json::Map::new(),
        }
    }

    fn denied_coordinates(
        query: &str,
        session: Option<&Session>,
        decider: Option<&dyn Decider>,
    ) -> Vec<String> {
        let supergraph = supergraph();
        let requirements = Requirements::of(&supergraph.schema).unwrap();
        let operation = operation(&supergraph, query);
        let guards = guards(&requirements, &supergraph, &operation);
        let context = Context {
            session,
            operation_name: None,
            kind: OperationType::Query,
            variables: &JsonMap::new(),
            decider,
        };
        let denied = decide(&guards, &context);
        guards
            .iter()
            .filter(|guard| denied.contains(&guard.id))
            .map(|guard| guard.coordinate.clone())
            .collect()
    }

    #[test]
    fn renamed_directives_are_read_by_their_links() {
        let requirements = Requirements::of(&supergraph().schema).unwrap();
        assert_eq!(
            requirements.policy_names.iter().collect::<Vec<_>>(),
            ["hr.reader"]
        );
        let email =
            &requirements.fields[&(Name::new_unchecked("User"), Name::new_unchecked("email"))];
        assert_eq!(
            email.scopes,
            [[vec!["read:email".to_owned()], vec!["admin".to_owned()]]]
        );
        assert!(requirements.types[&Name::new_unchecked("Secret")].authenticated);
    }

    #[test]
    fn anonymous_requests_lose_guarded_fields_and_types() {
        let query = "{ me { id email salary } secrets { value } shape { area } }";
        assert_eq!(
            denied_coordinates(query, None, Some(&Allow(&[]))),
            ["User.email", "User.salary", "Query.secrets", "Shape.area"]
        );
    }

    #[test]
    fn an_interface_field_is_guarded_by_every_implementing_type() {
        // `Vault` needs a token: through `Shape`, its `name` is out of reach anonymously.
        assert_eq!(
            denied_coordinates("{ shape { name } }", None, None),
            ["Shape.name"]
        );
        assert!(denied_coordinates("{ shape { name } }", Some(&session(&[])), None).is_empty());
    }

    #[test]
    fn scopes_are_an_or_of_ands_and_policies_are_decided_by_name() {
        let query = "{ me { email salary } }";
        let reader = session(&["read:email"]);
        assert_eq!(
            denied_coordinates(query, Some(&reader), Some(&Allow(&[]))),
            ["User.salary"]
        );
        let admin = session(&["admin"]);
        assert!(denied_coordinates(query, Some(&admin), Some(&Allow(&["hr.reader"]))).is_empty());
        let neither = session(&["read:orders"]);
        assert_eq!(
            denied_coordinates(query, Some(&neither), None),
            ["User.email", "User.salary"]
        );
    }

    #[test]
    fn fragments_on_guarded_types_are_marked_and_pruned() {
        let supergraph = supergraph();
        let operation = operation(
            &supergraph,
            "{ shape { ... on Circle { radius area } } me { id email } }",
        );
        let requirements = Requirements::of(&supergraph.schema).unwrap();
        let guards = guards(&requirements, &supergraph, &operation);
        let email = guards
            .iter()
            .find(|guard| guard.coordinate == "User.email")
            .unwrap();
        let area = guards
            .iter()
            .find(|guard| guard.coordinate == "Circle.area")
            .unwrap();
        let (marked, pruned) = mark(&operation, &[email.id, area.id]);
        let me = &marked.fields[1];
        let Selection::Field(email_field) = &me.selections[1] else {
            panic!()
        };
        assert!(email_field.denied);
        let Selection::Field(pruned_me) = &pruned.fields[1].selections[0] else {
            panic!()
        };
        assert_eq!(pruned.fields[1].selections.len(), 1);
        assert_eq!(pruned_me.name, "id");
    }

    #[test]
    fn unknown_security_specs_are_refused_by_name() {
        let sdl = SUPERGRAPH.replace(
            "https://specs.apollo.dev/policy/v0.1",
            "https://specs.example.com/rowlevel/v1.0",
        );
        let supergraph = Schema::parse(&sdl, "s.graphql").unwrap();
        let error = Requirements::of(&supergraph).unwrap_err();
        assert!(
            error.contains("https://specs.example.com/rowlevel/v1.0"),
            "{error}"
        );
        let newer = SUPERGRAPH.replace("authenticated/v0.1", "authenticated/v0.9");
        let supergraph = Schema::parse(&newer, "s.graphql").unwrap();
        assert!(Requirements::of(&supergraph).unwrap_err().contains("v0.9"));
    }
}
