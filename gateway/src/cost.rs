//! Demand control: what an operation may cost, estimated from the operation before any
//! subgraph is called.
//!
//! Costs follow the cost directives (`@cost` and `@listSize`, <https://specs.apollo.dev/cost/v0.1>)
//! as composition carries them into the supergraph, under whatever names its `@link` gives them,
//! and defaults where the schema says nothing:
//!
//! - a field returning an object, interface or union costs 1 (10 at the root of a mutation), a
//!   scalar or enum 0, unless `@cost(weight:)` on the field or its type says otherwise;
//!   arguments and input fields with `@cost` add their weight when given;
//! - a list multiplies what one of its items costs by its size: the largest slicing argument
//!   given or defaulted (`@listSize(slicingArguments:)`, or without `@listSize` the configured argument
//!   names such as `first` and `limit`), else `@listSize(assumedSize:)`, else the configured
//!   list size; `@listSize(sizedFields:)` sizes those child fields instead (connections'
//!   `edges`);
//! - under an interface or union, the costliest of the fragments counts.

use std::collections::HashMap;

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node, Schema};

use crate::operation::{Field, Kind, Normalized, Selection};

/// The cost spec's identity in `@link(url:)`, without its version.
const COST_SPEC: &str = "https://specs.apollo.dev/cost";

/// What a root mutation field costs unless `@cost` says otherwise.
const MUTATION_WEIGHT: f64 = 10.0;

/// How demand control estimates and what it does with the estimate.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DemandControl {
    pub mode: Mode,
    /// The highest estimated cost an operation may have.
    pub max_cost: u64,
    /// The size assumed for a list the schema does not size (`@listSize`) and no slicing
    /// argument bounds.
    pub list_size: u64,
    /// Arguments that bound a list's length where the field has no `@listSize`: the largest
    /// one given is its size.
    pub slicing_arguments: Vec<String>,
}

impl Default for DemandControl {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            max_cost: 200_000,
            list_size: 10,
            slicing_arguments: ["first", "last", "limit"].map(str::to_owned).to_vec(),
        }
    }
}

/// What to do with the estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse operations over `max_cost` before anything is fetched.
    #[default]
    Enforce,
    /// Run everything and report the estimate in `extensions.cost`.
    Measure,
    /// Estimate nothing (no cost bound at all).
    Off,
}

/// How one list is sized (`@listSize`).
#[derive(Clone, Debug, Default, PartialEq)]
struct ListSize {
    assumed: Option<f64>,
    slicing: Vec<Name>,
    sized_fields: Vec<Name>,
}

/// What the schema says about one field's cost.
#[derive(Clone, Debug, Default, PartialEq)]
struct FieldCost {
    weight: Option<f64>,
    /// `@cost` on the field's arguments.
    arguments: Vec<(Name, f64)>,
    list_size: Option<ListSize>,
}

/// The cost directives of a supergraph, read once when it loads.
#[derive(Clone, Debug, Default)]
pub struct CostModel {
    /// `@cost` on objects, scalars and enums.
    types: HashMap<Name, f64>,
    fields: HashMap<(Name, Name), FieldCost>,
    /// `@cost` on input fields, by input type and field.
    input_fields: HashMap<(Name, Name), f64>,
}

fn int_argument(directive: &apollo_compiler::ast::Directive, name: &str) -> Option<f64> {
    directive
        .specified_argument_by_name(name)
        .and_then(|value| value.to_i32())
        .map(f64::from)
}

fn names_argument(directive: &apollo_compiler::ast::Directive, name: &str) -> Vec<Name> {
    directive
        .specified_argument_by_name(name)
        .and_then(|value| value.as_list())
        .unwrap_or_default()
        .iter()
        .filter_map(|value| Name::new(value.as_str()?).ok())
        .collect()
}

impl CostModel {
    /// The `@cost` and `@listSize` of `schema` (the supergraph as composed), under the names
    /// its link to the cost spec gives them; empty when it has none.
    pub fn of(schema: &Schema) -> Self {
        let mut model = Self::default();
        let Some(link) = crate::links::links(schema)
            .find(|(_, identity, _)| *identity == COST_SPEC)
            .map(|(link, _, _)| link)
        else {
            return model;
        };
        let cost = crate::links::directive_name(link, "cost", "cost");
        let list_size = crate::links::directive_name(link, "cost", "listSize");
        let weight = |directive: Option<&apollo_compiler::ast::Directive>| {
            directive.and_then(|directive| int_argument(directive, "weight"))
        };
        for (type_name, ty) in &schema.types {
            match ty {
                ExtendedType::Object(_) | ExtendedType::Scalar(_) | ExtendedType::Enum(_) => {
                    if let Some(w) = weight(ty.directives().get(&cost).map(|d| &***d)) {
                        model.types.insert(type_name.clone(), w);
                    }
                }
                ExtendedType::InputObject(input) => {
                    for (field_name, field) in &input.fields {
                        if let Some(w) = weight(field.directives.get(&cost).map(|d| &**d)) {
                            model
                                .input_fields
                                .insert((type_name.clone(), field_name.clone()), w);
                        }
                    }
                }
                _ => {}
            }
            let fields = match ty {
                ExtendedType::Object(object) => &object.fields,
                ExtendedType::Interface(interface) => &interface.fields,
                _ => continue,
            };
            for (field_name, field) in fields {
                let entry = FieldCost {
                    weight: weight(field.directives.get(&cost).map(|d| &**d)),
                    arguments: field
                        .arguments
                        .iter()
                        .filter_map(|argument| {
                            Some((
                                argument.name.clone(),
                                weight(argument.directives.get(&cost).map(|d| &**d))?,
                            ))
                        })
                        .collect(),
                    list_size: field.directives.get(&list_size).map(|directive| ListSize {
                        assumed: int_argument(directive, "assumedSize"),
                        slicing: names_argument(directive, "slicingArguments"),
                        sized_fields: names_argument(directive, "sizedFields"),
                    }),
                };
                if entry != FieldCost::default() {
                    model
                        .fields
                        .insert((type_name.clone(), field_name.clone()), entry);
                }
            }
        }
        model
    }
}

/// Estimates operations' costs for one supergraph.
pub struct Estimator<'a> {
    pub model: &'a CostModel,
    /// The API schema: argument defaults and input types.
    pub schema: &'a Schema,
    pub settings: &'a DemandControl,
    /// The request's coerced variables, for slicing arguments given as variables.
    pub variables: &'a JsonMap,
}

impl Estimator<'_> {
    /// The estimated cost of `operation`.
    pub fn estimate(&self, operation: &Normalized) -> f64 {
        let root_weight = (operation.kind == OperationType::Mutation).then_some(MUTATION_WEIGHT);
        operation
            .fields
            .iter()
            .map(|field| self.field(&operation.root_type, field, root_weight, None))
            .sum()
    }

    /// What `selections` under `parent` cost: every field, and the costliest fragment.
    fn selections(&self, parent: &Name, selections: &[Selection], sized: Option<&Sized>) -> f64 {
        let mut fields = 0.0;
        let mut fragments: Vec<(&Name, f64)> = Vec::new();
        for selection in selections {
            match selection {
                Selection::Field(field) => {
                    let size = sized
                        .filter(|sized| sized.fields.contains(&field.name))
                        .map(|sized| sized.size);
                    fields += self.field(parent, field, None, size);
                }
                Selection::Fragment(fragment) if !fragment.denied => {
                    let cost = self.selections(&fragment.on, &fragment.selections, sized);
                    // A fragment on an interface or union may apply with any other: counted
                    // in full. Fragments on object types exclude each other: the costliest.
                    if !matches!(
                        self.schema.types.get(&fragment.on),
                        Some(ExtendedType::Object(_))
                    ) {
                        fields += cost;
                        continue;
                    }
                    match fragments.iter_mut().find(|(on, _)| **on == fragment.on) {
                        Some((_, total)) => *total += cost,
                        None => fragments.push((&fragment.on, cost)),
                    }
                }
                Selection::Fragment(_) => {}
            }
        }
        fields + fragments.iter().map(|(_, cost)| *cost).fold(0.0, f64::max)
    }

    /// What `field` of `parent` costs with everything under it; `size` when a parent's
    /// `@listSize(sizedFields:)` sizes it.
    fn field(&self, parent: &Name, field: &Field, root: Option<f64>, size: Option<f64>) -> f64 {
        if field.denied || field.name.starts_with("__") {
            return 0.0;
        }
        let known = self.model.fields.get(&(parent.clone(), field.name.clone()));
        let named = field.type_name();
        let weight = self.weight(known, field, root);
        let arguments = self.arguments(parent, field, known);
        let list_size = known.and_then(|known| known.list_size.as_ref());
        let sliced = self.slice(parent, field, list_size);
        let sized = list_size
            .filter(|list_size| !list_size.sized_fields.is_empty())
            .map(|list_size| Sized {
                fields: &list_size.sized_fields,
                size: sliced.unwrap_or(self.settings.list_size as f64),
            });
        let below = self.selections(named, &field.selections, sized.as_ref());
        if field.ty.is_list() {
            let size = size
                .or(if sized.is_some() { None } else { sliced })
                .unwrap_or(self.settings.list_size as f64);
            // Lists of lists: the outer list sized as above, each inner one by default.
            let inner = (1..list_depth(&field.ty))
                .fold(1.0, |total, _| total * self.settings.list_size as f64);
            arguments + size * inner * (weight + below)
        } else {
            arguments + weight + below
        }
    }

    /// What one value of `field` weighs: its `@cost`, a root mutation's 10, its type's `@cost`,
    /// or 1 for an object and 0 for a scalar.
    fn weight(&self, known: Option<&FieldCost>, field: &Field, root: Option<f64>) -> f64 {
        known
            .and_then(|known| known.weight)
            .or(root)
            .or_else(|| self.model.types.get(field.type_name()).copied())
            .unwrap_or(match field.kind {
                Kind::Object | Kind::Abstract => 1.0,
                Kind::Scalar | Kind::Enum => 0.0,
            })
    }

    /// What `operation`'s answer `data` actually cost, by the same weights with the lists'
    /// real lengths (an object's fields from every fragment that selected them).
    pub fn actual(&self, operation: &Normalized, data: &serde_json::Value) -> f64 {
        let root = (operation.kind == OperationType::Mutation).then_some(MUTATION_WEIGHT);
        let Some(object) = data.as_object() else {
            return 0.0;
        };
        operation
            .fields
            .iter()
            .filter_map(|field| {
                let value = object.get(field.key.as_str())?;
                Some(self.actual_field(&operation.root_type, field, root, value))
            })
            .sum()
    }

    fn actual_field(
        &self,
        parent: &Name,
        field: &Field,
        root: Option<f64>,
        value: &serde_json::Value,
    ) -> f64 {
        if field.denied || field.name.starts_with("__") {
            return 0.0;
        }
        let known = self.model.fields.get(&(parent.clone(), field.name.clone()));
        let weight = self.weight(known, field, root);
        self.arguments(parent, field, known) + self.actual_value(field, weight, value)
    }

    fn actual_value(&self, field: &Field, weight: f64, value: &serde_json::Value) -> f64 {
        match value {
            serde_json::Value::Null => 0.0,
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| self.actual_value(field, weight, item))
                .sum(),
            serde_json::Value::Object(object) => {
                weight + self.actual_selections(field.type_name(), &field.selections, object)
            }
            _ => weight,
        }
    }

    fn actual_selections(
        &self,
        parent: &Name,
        selections: &[Selection],
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> f64 {
        selections
            .iter()
            .map(|selection| match selection {
                Selection::Field(field) => object
                    .get(field.key.as_str())
                    .map_or(0.0, |value| self.actual_field(parent, field, None, value)),
                Selection::Fragment(fragment) if !fragment.denied => {
                    self.actual_selections(&fragment.on, &fragment.selections, object)
                }
                Selection::Fragment(_) => 0.0,
            })
            .sum()
    }

    /// The size the field's slicing arguments (or `@listSize(assumedSize:)`) give its list,
    /// if any.
    fn slice(&self, parent: &Name, field: &Field, list_size: Option<&ListSize>) -> Option<f64> {
        let given = if let Some(list_size) = list_size {
            self.largest(parent, field, list_size.slicing.iter().map(Name::as_str))
        } else {
            let names = self.settings.slicing_arguments.iter().map(String::as_str);
            self.largest(parent, field, names)
        };
        given.or_else(|| list_size.and_then(|list_size| list_size.assumed))
    }

    /// The largest of the arguments `names` given to `field` or defaulted by the schema.
    fn largest<'n>(
        &self,
        parent: &Name,
        field: &Field,
        names: impl Iterator<Item = &'n str>,
    ) -> Option<f64> {
        let definition = self
            .schema
            .type_field(parent, &field.name)
            .ok()
            .map(|definition| &definition.arguments);
        names
            .filter_map(|name| {
                // A variable that is missing or null counts as the argument left out.
                let given = field
                    .arguments
                    .iter()
                    .find(|argument| argument.name == name)
                    .and_then(|argument| self.number(&argument.value));
                given.or_else(|| {
                    let default = definition?
                        .iter()
                        .find(|argument| argument.name == name)?
                        .default_value
                        .as_ref()?;
                    self.number(default)
                })
            })
            .fold(None, |largest: Option<f64>, n| {
                Some(largest.map_or(n, |l| l.max(n)))
            })
    }

    /// An argument's value as a number, variables looked up. Below 1 is no bound at all (some
    /// backends read 0 or -1 as "everything"), so it counts as not given.
    fn number(&self, value: &Node<Value>) -> Option<f64> {
        match value.as_ref() {
            Value::Int(int) => int.try_to_f64().ok(),
            Value::Variable(name) => self
                .variables
                .get(name.as_str())
                .and_then(JsonValue::as_f64),
            _ => None,
        }
        .filter(|n| *n >= 1.0)
    }

    /// The weights of the arguments given, and of the input fields with `@cost` in them.
    fn arguments(&self, parent: &Name, field: &Field, known: Option<&FieldCost>) -> f64 {
        if field.arguments.is_empty() {
            return 0.0;
        }
        let mut total = 0.0;
        let definitions = self
            .schema
            .type_field(parent, &field.name)
            .ok()
            .map(|definition| &definition.arguments);
        for argument in &field.arguments {
            if let Some((_, weight)) = known
                .into_iter()
                .flat_map(|known| &known.arguments)
                .find(|(name, _)| *name == argument.name)
            {
                total += weight;
            }
            if !self.model.input_fields.is_empty()
                && let Some(definition) = definitions
                    .into_iter()
                    .flatten()
                    .find(|definition| definition.name == argument.name)
            {
                total += self.input(definition.ty.inner_named_type(), &argument.value);
            }
        }
        total
    }

    /// The weights of the input fields with `@cost` given in `value` of input type `ty`.
    fn input(&self, ty: &Name, value: &Value) -> f64 {
        let Some(ExtendedType::InputObject(input)) = self.schema.types.get(ty) else {
            return 0.0;
        };
        match value {
            Value::Variable(name) => self
                .variables
                .get(name.as_str())
                .map_or(0.0, |value| self.input_json(ty, value)),
            Value::List(items) => items.iter().map(|item| self.input(ty, item)).sum(),
            Value::Object(fields) => fields
                .iter()
                .map(|(name, value)| {
                    self.input_field(input, ty, name, |field| self.input(field, value))
                })
                .sum(),
            _ => 0.0,
        }
    }
}

impl Estimator<'_> {
    /// One field of the input object `ty`: its own `@cost`, and what its value costs as
    /// `nested` counts it, given the field's type.
    fn input_field(
        &self,
        input: &apollo_compiler::schema::InputObjectType,
        ty: &Name,
        name: &Name,
        nested: impl FnOnce(&Name) -> f64,
    ) -> f64 {
        let own = self
            .model
            .input_fields
            .get(&(ty.clone(), name.clone()))
            .copied()
            .unwrap_or(0.0);
        own + input
            .fields
            .get(name)
            .map_or(0.0, |field| nested(field.ty.inner_named_type()))
    }

    /// [`Self::input`] for a value given as a variable.
    fn input_json(&self, ty: &Name, value: &JsonValue) -> f64 {
        let Some(ExtendedType::InputObject(input)) = self.schema.types.get(ty) else {
            return 0.0;
        };
        match value {
            JsonValue::Array(items) => items.iter().map(|item| self.input_json(ty, item)).sum(),
            JsonValue::Object(fields) => fields
                .iter()
                .map(|(name, value)| {
                    let Ok(name) = Name::new(name.as_str()) else {
                        return 0.0;
                    };
                    self.input_field(input, ty, &name, |field| self.input_json(field, value))
                })
                .sum(),
            _ => 0.0,
        }
    }
}

/// Child fields a parent's `@listSize(sizedFields:)` sizes, and the size.
struct Sized<'a> {
    fields: &'a [Name],
    size: f64,
}

/// How many lists `ty` nests (`[[T!]]` is 2).
fn list_depth(ty: &apollo_compiler::ast::Type) -> usize {
    use apollo_compiler::ast::Type;
    match ty {
        Type::Named(_) | Type::NonNullNamed(_) => 0,
        Type::List(inner) | Type::NonNullList(inner) => 1 + list_depth(inner),
    }
}

/// The estimate as it is reported: a whole number, saturating.
pub fn whole(cost: f64) -> u64 {
    if cost.is_finite() && cost < u64::MAX as f64 {
        cost.ceil() as u64
    } else {
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
schema @link(url: "https://specs.apollo.dev/link/v1")
  @link(url: "https://specs.apollo.dev/cost/v0.1", import: [{ name: "@cost", as: "@price" }, "@listSize"]) {
  query: Query
  mutation: Mutation
}
directive @link(url: String, as: String, import: [link__Import]) repeatable on SCHEMA
directive @price(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR
directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION
scalar link__Import
type Query {
  users(first: Int, limit: Int = 4): [User!]!
  search(text: String @price(weight: 7), filter: Filter): [Node!]! @listSize(assumedSize: 5)
  page(count: Int): UserPage! @listSize(slicingArguments: ["count"], sizedFields: ["items"])
  heavy: Int @price(weight: 50)
  matrix: [[User]]
}
type Mutation { rename(id: ID!): User }
input Filter { deep: Boolean @price(weight: 3) }
interface Node { id: ID! }
type User implements Node { id: ID! friends: [User!]! score: Score }
type Group implements Node @price(weight: 4) { id: ID! members: [User!]! }
type UserPage { items: [User!]! total: Int }
scalar Score @price(weight: 2)
"#;

    fn estimate(query: &str, variables: &str, settings: &DemandControl) -> u64 {
        let schema = Schema::parse_and_validate(SCHEMA, "schema.graphql").unwrap();
        let document =
            apollo_compiler::ExecutableDocument::parse_and_validate(&schema, query, "q.graphql")
                .unwrap();
        let operation = document.operations.iter().next().unwrap();
        let variables: JsonMap = serde_json::from_str(variables).unwrap();
        let normalized = crate::operation::normalize(&schema, &document, operation, &variables);
        let model = CostModel::of(&schema);
        whole(
            Estimator {
                model: &model,
                schema: &schema,
                settings,
                variables: &variables,
            }
            .estimate(&normalized),
        )
    }

    #[test]
    fn lists_multiply_by_their_slicing_argument_or_the_default_size() {
        let settings = DemandControl::default();
        // No argument given: `limit`'s default (4) sizes `users`; `friends` takes 10.
        assert_eq!(
            estimate("{ users { id friends { id } } }", "{}", &settings),
            4 * (1 + 10)
        );
        // The largest slicing argument given, literal or variable.
        assert_eq!(
            estimate(
                "query($n: Int) { users(first: 2, limit: $n) { id } }",
                r#"{"n": 30}"#,
                &settings
            ),
            30
        );
        let small = DemandControl {
            list_size: 3,
            ..DemandControl::default()
        };
        assert_eq!(
            estimate(
                "{ users(limit: 1) { friends { friends { id } } } }",
                "{}",
                &small
            ),
            1 + 3 * (1 + 3)
        );
    }

    #[test]
    fn cost_directives_weigh_types_fields_arguments_and_input_fields() {
        let settings = DemandControl::default();
        // A scalar with a weight of 2, once per user.
        assert_eq!(
            estimate("{ users(limit: 3) { score } }", "{}", &settings),
            3 * (1 + 2)
        );
        assert_eq!(estimate("{ heavy }", "{}", &settings), 50);
        // assumedSize 5; the argument's weight 7 and the input field's 3 once.
        assert_eq!(
            estimate(
                r#"{ search(text: "x", filter: { deep: true }) { id } }"#,
                "{}",
                &settings
            ),
            7 + 3 + 5
        );
    }

    #[test]
    fn missing_null_or_tiny_slicing_values_do_not_shrink_the_estimate() {
        let settings = DemandControl::default();
        // Missing and null variables, and values below 1, count as left out: `limit`'s
        // default (4) sizes `users`, then `search`'s assumed size (5).
        for variables in ["{}", r#"{"n": null}"#, r#"{"n": 0}"#, r#"{"n": -1}"#] {
            assert_eq!(
                estimate(
                    "query($n: Int) { users(limit: $n) { id } }",
                    variables,
                    &settings
                ),
                4,
                "{variables}"
            );
        }
        // Input fields' weights count when the input comes as a variable too.
        assert_eq!(
            estimate(
                "query($f: Filter) { search(filter: $f) { id } }",
                r#"{"f": {"deep": true}}"#,
                &settings
            ),
            3 + 5
        );
    }

    #[test]
    fn fragments_on_abstract_types_count_in_full() {
        let settings = DemandControl::default();
        let cost = estimate(
            "{ search { ... on Node { ... on User { friends { id } } } ... on User { friends { id } } } }",
            "{}",
            &settings,
        );
        // The `Node` fragment may apply with the `User` one: both count.
        assert_eq!(cost, 5 * (1 + 10 + 10));
    }

    #[test]
    fn abstract_types_cost_their_costliest_fragment() {
        let settings = DemandControl::default();
        let cost = estimate(
            "{ search { id ... on User { friends { id } } ... on Group { members { friends { id } } } } }",
            "{}",
            &settings,
        );
        // User: 10 friends; Group: 10 members with 10 friends each; the costlier counts, in
        // each of 5 nodes.
        assert_eq!(cost, 5 * (1 + 10 * (1 + 10)));
    }

    #[test]
    fn lists_of_lists_multiply_once_per_level() {
        let settings = DemandControl {
            list_size: 3,
            ..DemandControl::default()
        };
        // Three lists of three users.
        assert_eq!(estimate("{ matrix { id } }", "{}", &settings), 9);
    }

    #[test]
    fn sized_fields_take_the_parents_slicing_argument() {
        let settings = DemandControl::default();
        assert_eq!(
            estimate(
                "{ page(count: 20) { total items { id } } }",
                "{}",
                &settings
            ),
            1 + 20
        );
    }

    #[test]
    fn mutations_cost_ten_and_nothing_costs_when_denied_or_introspected() {
        let settings = DemandControl::default();
        assert_eq!(
            estimate("mutation { rename(id: 1) { id } }", "{}", &settings),
            10
        );
        assert_eq!(estimate("{ __typename }", "{}", &settings), 0);
    }

    #[test]
    fn the_actual_cost_counts_what_the_answer_holds() {
        let schema = Schema::parse_and_validate(SCHEMA, "schema.graphql").unwrap();
        let query = "{ users(limit: 9) { id friends { id score } } }";
        let document =
            apollo_compiler::ExecutableDocument::parse_and_validate(&schema, query, "q.graphql")
                .unwrap();
        let operation = document.operations.iter().next().unwrap();
        let variables = JsonMap::new();
        let normalized = crate::operation::normalize(&schema, &document, operation, &variables);
        let model = CostModel::of(&schema);
        let settings = DemandControl::default();
        let estimator = Estimator {
            model: &model,
            schema: &schema,
            settings: &settings,
            variables: &variables,
        };
        // Two users (not nine), with one and no friends; each friend has a score (weight 2).
        let data = serde_json::json!({ "users": [
            { "id": "1", "friends": [{ "id": "2", "score": 5 }] },
            { "id": "2", "friends": [] }
        ] });
        assert_eq!(whole(estimator.actual(&normalized, &data)), 2 + (1 + 2));
        assert_eq!(
            whole(estimator.estimate(&normalized)),
            9 * (1 + 10 * (1 + 2))
        );
    }

    #[test]
    fn a_supergraph_without_the_cost_link_has_no_weights() {
        let schema =
            Schema::parse_and_validate("type Query { a: [A] } type A { b: Int }", "schema.graphql")
                .unwrap();
        let model = CostModel::of(&schema);
        assert!(model.fields.is_empty() && model.types.is_empty());
        assert_eq!(whole(f64::INFINITY), u64::MAX);
        assert_eq!(whole(2.2), 3);
    }
}
