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

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::{Name, Node};

use crate::auth::Session;
use crate::errors::Code;
use crate::operation::{Field, Normalized, Selection};
pub use crate::requirements::{Requirement, Requirements};
use crate::supergraph::Supergraph;

mod decide;

pub use decide::{Context, Decider, decide};

/// The code of the error a denied selection gets.
pub const UNAUTHORIZED: Code = Code::UnauthorizedFieldOrType;

/// A selection of an operation that has requirements to check.
#[derive(Debug)]
pub struct Guard {
    /// The selection's number in the operation, counted in pre-order (see [`mark`]).
    id: u32,
    /// `Type.field`, or the type of a fragment.
    coordinate: String,
    arguments: Vec<Node<apollo_compiler::ast::Argument>>,
    /// The field's argument definitions, to give policies every argument with its default.
    definitions: Vec<Node<apollo_compiler::ast::InputValueDefinition>>,
    /// The first guard with this coordinate and these very arguments (the same nodes, as a
    /// fragment spread many times gives): their policy decisions are shared.
    share: u32,
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
        shares: HashMap::new(),
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
    /// The first guard per coordinate and argument nodes (by address).
    shares: HashMap<(String, Vec<usize>), u32>,
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
                let coordinate = format!("{parent}.{}", field.name);
                let addresses = field
                    .arguments
                    .iter()
                    .map(|argument| {
                        std::ptr::from_ref::<apollo_compiler::ast::Argument>(argument) as usize
                    })
                    .collect();
                let share = *self
                    .shares
                    .entry((coordinate.clone(), addresses))
                    .or_insert(id);
                self.guards.push(Guard {
                    id,
                    coordinate,
                    arguments: field.arguments.clone(),
                    definitions: self
                        .supergraph
                        .schema
                        .type_field(parent, &field.name)
                        .map(|definition| definition.arguments.clone())
                        .unwrap_or_default(),
                    share,
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
                            definitions: Vec::new(),
                            share: id,
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
  tag: Tag
}
interface Named @join__type(graph: A) @scopes(scopes: [["named"]]) { label: String }
type Tag implements Named @join__type(graph: A) { label: String }
type User @join__type(graph: A) {
  id: ID!
  email: String @scopes(scopes: [["read:email"], ["admin"]])
  salary: Int @rule(policies: [["hr.reader"]])
  bonus: Int @join__field(graph: A, requires: "salary")
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
            assert!(
                ["User.salary", "User.bonus"].contains(&input["coordinate"].as_str().unwrap()),
                "{input}"
            );
            Ok(self.0.contains(&policy))
        }
    }

    fn session(scopes: &[&str]) -> Session {
        Session {
            subject: Some("1".into()),
            principal: Some("1".into()),
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
        let operation = operation(&supergraph, query);
        let guards = guards(&supergraph.requirements, &supergraph, &operation);
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
        let supergraph = supergraph();
        let requirements = &supergraph.requirements;
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
        let guards = guards(&supergraph.requirements, &supergraph, &operation);
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
        let error = Supergraph::parse(&sdl).unwrap_err().to_string();
        assert!(
            error.contains("https://specs.example.com/rowlevel/v1.0"),
            "{error}"
        );
        let newer = SUPERGRAPH.replace("authenticated/v0.1", "authenticated/v0.9");
        let error = Supergraph::parse(&newer).unwrap_err().to_string();
        assert!(error.contains("v0.9"), "{error}");
    }

    #[test]
    fn an_interface_requirement_holds_on_its_implementations() {
        // Tag says nothing itself; the interface it implements needs the scope.
        assert_eq!(
            denied_coordinates("{ tag { label } }", Some(&session(&[])), None),
            ["Query.tag"]
        );
        assert!(
            denied_coordinates("{ tag { label } }", Some(&session(&["named"])), None).is_empty()
        );
    }

    #[test]
    fn a_field_requires_what_its_required_fields_require() {
        // bonus is computed from salary: whoever may not read salary may not have bonus.
        assert_eq!(
            denied_coordinates("{ me { bonus } }", Some(&session(&[])), Some(&Allow(&[]))),
            ["User.bonus"]
        );
        assert!(
            denied_coordinates(
                "{ me { bonus } }",
                Some(&session(&[])),
                Some(&Allow(&["hr.reader"]))
            )
            .is_empty()
        );
    }
}
