//! What a mutation's answer says it changed, for the entity cache: each entity it returns,
//! named by its key fields, so that only those entries are dropped; and the entity types whose
//! returned objects cannot be named that way (a key field not selected, a runtime type the
//! answer does not tell), which are dropped whole.
//!
//! What a root field returns is not all it may change: `update_products { affected_rows }`
//! changes products and names none. So each entity type within two levels of a root field's
//! type (`ProductMutationResponse` → `Product`; `Review` → its `Product` and `User`) whose
//! answer names no entity of it is dropped whole. Changes further away (a trigger updating
//! another table) are not seen; the admin endpoint, `polygraph cache invalidate` and the
//! entries' TTL cover those.

use std::collections::BTreeSet;

use apollo_compiler::Name;
use serde_json::{Map, Value};

use crate::entity_cache::key_field_names;
use crate::operation::{self, Field, Kind, Normalized};
use crate::supergraph::Supergraph;

/// Entities to drop by key, and types to drop whole.
#[derive(Debug, Default, PartialEq)]
pub struct Changed {
    /// `(type, key fields)` of each entity returned, once per distinct key of its type.
    pub entities: Vec<(String, Map<String, Value>)>,
    /// Entity types to drop entirely.
    pub types: BTreeSet<String>,
}

/// What `data`, the answer to the mutation `operation`, changed, root field by root field
/// (fields authorization denied ran nothing and change nothing). With `failed` (the answer
/// has errors), every entity type a field selects is dropped whole as well: a field that
/// failed may have changed what it did not return.
pub fn changed(
    supergraph: &Supergraph,
    operation: &Normalized,
    data: &Value,
    failed: bool,
) -> Changed {
    let mut total = Changed::default();
    let mut seen = std::collections::HashSet::new();
    for field in operation.fields.iter().filter(|field| !field.denied) {
        let mut walk = Walk {
            supergraph,
            changed: Changed::default(),
        };
        if let Some(value) = data.get(field.key.as_str()) {
            walk.value(field, value);
        }
        if failed {
            walk.everything_under(field);
        }
        // Entity types near the field that its own answer names none of.
        let named: BTreeSet<&str> = walk
            .changed
            .entities
            .iter()
            .map(|(type_name, _)| type_name.as_str())
            .collect();
        let mut near = BTreeSet::new();
        reachable(supergraph, field.type_name(), 2, &mut near);
        let unnamed: Vec<String> = near
            .into_iter()
            .filter(|type_name| !named.contains(type_name.as_str()))
            .filter(|type_name| !keys(supergraph, type_name).is_empty())
            .map(|type_name| type_name.to_string())
            .collect();
        total.types.extend(unnamed);
        total.types.append(&mut walk.changed.types);
        for (type_name, key) in walk.changed.entities {
            if seen.insert((type_name.clone(), Value::Object(key.clone()).to_string())) {
                total.entities.push((type_name, key));
            }
        }
    }
    total.entities.sort_by(|a, b| a.0.cmp(&b.0));
    total
}

struct Walk<'a> {
    supergraph: &'a Supergraph,
    changed: Changed,
}

/// The response key the client gave `__typename` among `selections`, if it selected it.
fn typename_key(selections: &[operation::Selection]) -> Option<&str> {
    selections.iter().find_map(|selection| match selection {
        operation::Selection::Field(field) if field.name == "__typename" => {
            Some(field.key.as_str())
        }
        operation::Selection::Field(_) => None,
        operation::Selection::Fragment(fragment) => typename_key(&fragment.selections),
    })
}

/// The object types within `depth` levels of `type_name` (itself, or its members, at level 1).
fn reachable(supergraph: &Supergraph, type_name: &str, depth: usize, out: &mut BTreeSet<Name>) {
    if depth == 0 {
        return;
    }
    for runtime in supergraph.possible_types(type_name) {
        if let Some(apollo_compiler::schema::ExtendedType::Object(object)) =
            supergraph.api_schema.types.get(&runtime)
        {
            for field in object.fields.values() {
                reachable(supergraph, field.ty.inner_named_type(), depth - 1, out);
            }
        }
        out.insert(runtime);
    }
}

/// The distinct key field lists of `type_name`'s placements: none for a type that is not an
/// entity.
fn keys<'s>(supergraph: &'s Supergraph, type_name: &str) -> Vec<Vec<&'s str>> {
    let mut keys: Vec<Vec<&str>> = supergraph
        .types
        .get(type_name)
        .into_iter()
        .flatten()
        .filter_map(|placement| placement.key.as_deref())
        .map(|key| key_field_names(key).collect())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

impl Walk<'_> {
    /// An object of runtime type `runtime` with `selections`.
    fn object(
        &mut self,
        runtime: &Name,
        selections: &[operation::Selection],
        object: &Map<String, Value>,
    ) {
        let schema = &self.supergraph.api_schema;
        let fields = operation::collect(schema, selections, runtime);
        self.fields(runtime, &fields, object);
    }

    /// An object of runtime type `runtime` with its `fields` collected.
    fn fields(&mut self, runtime: &Name, fields: &[Field], object: &Map<String, Value>) {
        self.entity(runtime, fields, object);
        for field in fields {
            if let Some(value) = object.get(field.key.as_str()) {
                self.value(field, value);
            }
        }
    }

    /// Names the object as an entity of `runtime` by each of its keys, or drops the type.
    fn entity(&mut self, runtime: &Name, fields: &[Field], object: &Map<String, Value>) {
        for key in keys(self.supergraph, runtime) {
            let named: Option<Map<String, Value>> = key
                .iter()
                .map(|name| {
                    let field = fields
                        .iter()
                        .find(|field| field.name == *name && field.selections.is_empty())?;
                    let value = object.get(field.key.as_str())?;
                    (!value.is_object() && !value.is_array() && !value.is_null())
                        .then(|| ((*name).to_owned(), value.clone()))
                })
                .collect();
            match named {
                Some(named) => self.changed.entities.push((runtime.to_string(), named)),
                None => {
                    self.changed.types.insert(runtime.to_string());
                }
            }
        }
    }

    fn value(&mut self, field: &Field, value: &Value) {
        match value {
            Value::Array(items) => {
                for item in items {
                    self.value(field, item);
                }
            }
            Value::Object(object) => match field.kind {
                Kind::Object => self.object(field.type_name(), &field.selections, object),
                _ => match typename_key(&field.selections)
                    .and_then(|key| object.get(key))
                    .and_then(Value::as_str)
                {
                    Some(runtime) if self.supergraph.api_schema.types.contains_key(runtime) => {
                        let runtime = Name::new(runtime).expect("a schema type's name");
                        self.object(&runtime, &field.selections, object);
                    }
                    // The answer does not say which type this is: all it could be.
                    _ => self.everything_under(field),
                },
            },
            _ => {}
        }
    }

    /// Drops every entity type `field` could return, at any depth.
    fn everything_under(&mut self, field: &Field) {
        if field.denied {
            return;
        }
        for runtime in self.supergraph.possible_types(field.type_name()) {
            if !keys(self.supergraph, &runtime).is_empty() {
                self.changed.types.insert(runtime.to_string());
            }
        }
        self.everything_in(&field.selections);
    }

    fn everything_in(&mut self, selections: &[operation::Selection]) {
        for selection in selections {
            match selection {
                operation::Selection::Field(inner) => self.everything_under(inner),
                operation::Selection::Fragment(fragment) => {
                    self.everything_in(&fragment.selections);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Order` is an entity (key `id`) of two subgraphs; `Payment` is not an entity.
    const SUPERGRAPH: &str = include_str!("../tests/fixtures/mutations/supergraph.graphql");

    fn changed_by(mutation: &str, data: &serde_json::Value, failed: bool) -> Changed {
        changed_in(SUPERGRAPH, mutation, data, failed)
    }

    fn changed_in(sdl: &str, mutation: &str, data: &serde_json::Value, failed: bool) -> Changed {
        let supergraph = Supergraph::parse(sdl).unwrap();
        let schema = &supergraph.api_schema;
        let document =
            apollo_compiler::ExecutableDocument::parse_and_validate(schema, mutation, "m.graphql")
                .unwrap();
        let operation = document.operations.iter().next().unwrap();
        let normalized = operation::normalize(
            schema,
            &document,
            operation,
            &apollo_compiler::response::JsonMap::default(),
        );
        changed(&supergraph, &normalized, data, failed)
    }

    fn entity(type_name: &str, id: &str) -> (String, Map<String, Value>) {
        let key = serde_json::json!({ "id": id });
        (type_name.to_owned(), key.as_object().unwrap().clone())
    }

    #[test]
    fn returned_entities_are_named_by_their_keys() {
        let changed = changed_by(
            r#"mutation { placeOrder(item: "lamp") { id item } again: placeOrder(item: "mug") { key: id } charge(order: "1") { id amount } }"#,
            &serde_json::json!({
                "placeOrder": { "id": "7", "item": "lamp" },
                "again": { "key": "8" },
                "charge": { "id": "p1", "amount": 5 }
            }),
            false,
        );
        assert_eq!(
            changed.entities,
            [entity("Order", "7"), entity("Order", "8")]
        );
        assert!(changed.types.is_empty(), "{changed:?}");
    }

    #[test]
    fn each_root_field_answers_for_what_it_changed() {
        // `a` names no order: orders go whole, though `b` names one.
        let changed = changed_by(
            r#"mutation { a: placeOrder(item: "lamp") { item } b: placeOrder(item: "mug") { id } }"#,
            &serde_json::json!({ "a": { "item": "lamp" }, "b": { "id": "8" } }),
            false,
        );
        assert_eq!(changed.entities, [entity("Order", "8")]);
        assert_eq!(changed.types, BTreeSet::from(["Order".to_owned()]));
    }

    #[test]
    fn an_entity_without_its_key_in_the_answer_drops_its_type() {
        let changed = changed_by(
            r#"mutation { placeOrder(item: "lamp") { item } }"#,
            &serde_json::json!({ "placeOrder": { "item": "lamp" } }),
            false,
        );
        assert!(changed.entities.is_empty());
        assert_eq!(changed.types, BTreeSet::from(["Order".to_owned()]));
    }

    #[test]
    fn a_failed_mutation_drops_every_entity_type_it_selects() {
        let changed = changed_by(
            r#"mutation { placeOrder(item: "lamp") { id } cancelOrder(id: "3") }"#,
            &serde_json::json!({ "placeOrder": { "id": "7" }, "cancelOrder": null }),
            true,
        );
        assert_eq!(changed.entities, [entity("Order", "7")]);
        assert_eq!(changed.types, BTreeSet::from(["Order".to_owned()]));
        // A mutation that returns no entity names nothing when it succeeds.
        let changed = changed_by(
            r#"mutation { cancelOrder(id: "3") }"#,
            &serde_json::json!({ "cancelOrder": true }),
            false,
        );
        assert_eq!(changed, Changed::default());
    }

    #[test]
    fn members_of_a_union_are_told_apart_by_their_typename() {
        let sdl = include_str!("../tests/fixtures/unions/supergraph.graphql");
        let operation = "{ search { __typename ... on Book { id } ... on Film { title } } }";
        let data = serde_json::json!({ "search": [
            { "__typename": "Book", "id": "b1" },
            { "__typename": "Film", "title": "Heat" }
        ] });
        let changed = changed_in(sdl, operation, &data, false);
        assert_eq!(changed.entities, [entity("Book", "b1")]);
        assert_eq!(changed.types, BTreeSet::from(["Film".to_owned()]));
        // Without `__typename` the answer cannot say which member it holds: both are dropped.
        let operation = "{ search { ... on Book { id } } }";
        let data = serde_json::json!({ "search": [{ "id": "b1" }] });
        let changed = changed_in(sdl, operation, &data, false);
        assert!(changed.entities.is_empty());
        assert_eq!(
            changed.types,
            BTreeSet::from(["Book".to_owned(), "Film".to_owned()])
        );
    }
}
