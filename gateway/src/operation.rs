//! An operation in the shape the planner and the response builder work on: named fragments
//! inlined, `@skip`/`@include` applied with the request's variables, and, under object types,
//! fragments flattened and fields with the same response key merged — what the GraphQL spec's
//! `CollectFields` does, once per plan instead of once per object.
//!
//! Under interfaces and unions the runtime type is only known per object, so fragments stay;
//! [`collect`] flattens them for one runtime type when the planner or the response builder
//! needs it.

use apollo_compiler::ast::{self, OperationType};
use apollo_compiler::executable::{self, DirectiveList};
use apollo_compiler::response::JsonMap;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{ExecutableDocument, Name, Node, Schema};

/// A field as the client selected it.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The alias, or the name.
    pub key: Name,
    /// The same as JSON, quoted and with its colon (`"key":`), written as is into responses.
    pub key_json: Box<str>,
    pub name: Name,
    pub arguments: Vec<Node<ast::Argument>>,
    /// The field's type in the API schema.
    pub ty: ast::Type,
    /// What kind of type `ty` names, looked up once here instead of for every value.
    pub kind: Kind,
    /// Under an object type: fields only. Under an abstract type: fields and fragments.
    pub selections: Vec<Selection>,
    /// Authorization denied it: written as `null`, with an error (see [`crate::authorize`]).
    pub denied: bool,
}

/// The kinds of named type, as writing a response tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Enum,
    Object,
    /// An interface or a union.
    Abstract,
}

impl Kind {
    pub fn of(schema: &Schema, name: &str) -> Self {
        match schema.types.get(name) {
            Some(ExtendedType::Object(_)) => Self::Object,
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_)) => Self::Abstract,
            Some(ExtendedType::Enum(_)) => Self::Enum,
            _ => Self::Scalar,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    Field(Field),
    /// `... on Type { … }` under an abstract type.
    Fragment(Fragment),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fragment {
    pub on: Name,
    pub selections: Vec<Selection>,
    /// Authorization denied the type it is on.
    pub denied: bool,
}

impl Field {
    /// The name of the type this field returns, lists and non-null stripped.
    pub fn type_name(&self) -> &Name {
        self.ty.inner_named_type()
    }
}

/// An operation ready to plan.
#[derive(Clone, Debug)]
pub struct Normalized {
    pub kind: OperationType,
    pub root_type: Name,
    /// The root fields, merged.
    pub fields: Vec<Field>,
    /// The operation's variables as declared (`$name: Type = default`), to declare them
    /// alike in subgraph operations.
    pub variables: Vec<(Name, String)>,
}

/// Lowers `operation` of `document` with the request's (coerced) variables.
pub fn normalize(
    schema: &Schema,
    document: &ExecutableDocument,
    operation: &executable::Operation,
    variables: &JsonMap,
) -> Normalized {
    let lowering = Lowering {
        schema,
        document,
        variables,
    };
    let root_type = operation.selection_set.ty.clone();
    let items = lowering.lower(&operation.selection_set, &root_type);
    Normalized {
        kind: operation.operation_type,
        fields: collect(schema, &items, &root_type),
        root_type,
        variables: operation
            .variables
            .iter()
            .map(|variable| {
                let declared = match &variable.default_value {
                    Some(default) => format!("${}: {} = {default}", variable.name, variable.ty),
                    None => format!("${}: {}", variable.name, variable.ty),
                };
                (variable.name.clone(), declared)
            })
            .collect(),
    }
}

/// The fields of a federation field set (`@key(fields:)`, `@requires`, `@provides`), parsed
/// against the supergraph for `ty`.
pub fn field_set(
    schema: &apollo_compiler::validation::Valid<Schema>,
    ty: &Name,
    source: &str,
) -> Result<Vec<Field>, String> {
    let set = executable::FieldSet::parse_and_validate(schema, ty.clone(), source, "field-set")
        .map_err(|errors| format!("field set \"{source}\" on {ty}: {}", errors.errors))?;
    let document = ExecutableDocument::new();
    let variables = JsonMap::new();
    let lowering = Lowering {
        schema,
        document: &document,
        variables: &variables,
    };
    let items = lowering.lower(&set.selection_set, ty);
    Ok(collect(schema, &items, ty))
}

/// Whether a selection with `@skip`/`@include` stays, given the variables.
pub fn included(directives: &DirectiveList, variables: &JsonMap) -> bool {
    let flag = |name: &str| {
        directives.get(name).map(|directive| {
            match directive
                .specified_argument_by_name("if")
                .map(std::convert::AsRef::as_ref)
            {
                Some(ast::Value::Boolean(value)) => *value,
                Some(ast::Value::Variable(variable)) => variables
                    .get(variable.as_str())
                    .and_then(apollo_compiler::response::JsonValue::as_bool)
                    .unwrap_or(false),
                _ => false,
            }
        })
    };
    !flag("skip").unwrap_or(false) && flag("include").unwrap_or(true)
}

/// The variables that decide `@skip`/`@include` anywhere in `document`: their values are part
/// of a plan's cache key.
pub fn condition_variables(document: &ExecutableDocument) -> Vec<Name> {
    fn visit(set: &executable::SelectionSet, out: &mut Vec<Name>) {
        for selection in &set.selections {
            for directive in selection.directives() {
                if (directive.name == "skip" || directive.name == "include")
                    && let Some(ast::Value::Variable(name)) = directive
                        .specified_argument_by_name("if")
                        .map(std::convert::AsRef::as_ref)
                    && !out.contains(name)
                {
                    out.push(name.clone());
                }
            }
            match selection {
                executable::Selection::Field(field) => visit(&field.selection_set, out),
                executable::Selection::InlineFragment(inline) => {
                    visit(&inline.selection_set, out);
                }
                executable::Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    for operation in document.operations.iter() {
        visit(&operation.selection_set, &mut out);
    }
    for fragment in document.fragments.values() {
        visit(&fragment.selection_set, &mut out);
    }
    out
}

struct Lowering<'a> {
    schema: &'a Schema,
    document: &'a ExecutableDocument,
    variables: &'a JsonMap,
}

impl Lowering<'_> {
    /// `set`'s selections under `parent`: fields merged when `parent` is an object type.
    fn lower(&self, set: &executable::SelectionSet, parent: &Name) -> Vec<Selection> {
        let mut items = Vec::new();
        self.lower_into(set, parent, &mut items);
        if is_object(self.schema, parent) {
            collect(self.schema, &items, parent)
                .into_iter()
                .map(Selection::Field)
                .collect()
        } else {
            items
        }
    }

    fn lower_into(&self, set: &executable::SelectionSet, parent: &Name, out: &mut Vec<Selection>) {
        for selection in &set.selections {
            if !included(selection.directives(), self.variables) {
                continue;
            }
            match selection {
                executable::Selection::Field(field) => {
                    let child = field.ty().inner_named_type();
                    out.push(Selection::Field(Field {
                        key: field.response_key().clone(),
                        key_json: json_key(field.response_key()),
                        name: field.name.clone(),
                        arguments: field.arguments.clone(),
                        ty: field.ty().clone(),
                        kind: Kind::of(self.schema, child),
                        selections: if field.selection_set.selections.is_empty() {
                            Vec::new()
                        } else {
                            self.lower(&field.selection_set, child)
                        },
                        denied: false,
                    }));
                }
                executable::Selection::InlineFragment(inline) => {
                    let on = inline.type_condition.as_ref().unwrap_or(parent);
                    self.fragment(&inline.selection_set, on, parent, out);
                }
                executable::Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        self.fragment(
                            &fragment.selection_set,
                            fragment.type_condition(),
                            parent,
                            out,
                        );
                    }
                }
            }
        }
    }

    fn fragment(
        &self,
        set: &executable::SelectionSet,
        on: &Name,
        parent: &Name,
        out: &mut Vec<Selection>,
    ) {
        if on == parent {
            self.lower_into(set, parent, out);
        } else {
            out.push(Selection::Fragment(Fragment {
                on: on.clone(),
                selections: self.lower(set, on),
                denied: false,
            }));
        }
    }
}

/// `"key":` — a response key as JSON, ready to write.
pub fn json_key(key: &str) -> Box<str> {
    format!("{}:", serde_json::Value::from(key)).into_boxed_str()
}

/// Whether `name` is an object type of `schema`.
pub fn is_object(schema: &Schema, name: &str) -> bool {
    matches!(schema.types.get(name), Some(ExtendedType::Object(_)))
}

/// Whether a fragment on `on` applies to an object of type `runtime`.
pub fn applies(schema: &Schema, on: &str, runtime: &str) -> bool {
    on == runtime || schema.is_subtype(on, runtime)
}

/// The fields `items` select on an object of type `runtime`: fragments that apply flattened,
/// fields with one response key merged (their selections joined).
pub fn collect(schema: &Schema, items: &[Selection], runtime: &Name) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    collect_into(schema, items, runtime, &mut fields);
    for field in &mut fields {
        let child = field.type_name().clone();
        if is_object(schema, &child) && needs_merge(&field.selections) {
            field.selections = collect(schema, &field.selections, &child)
                .into_iter()
                .map(Selection::Field)
                .collect();
        }
    }
    fields
}

/// Whether selections under an object type still hold fragments or repeat a response key.
fn needs_merge(selections: &[Selection]) -> bool {
    selections
        .iter()
        .enumerate()
        .any(|(index, selection)| match selection {
            Selection::Fragment(_) => true,
            Selection::Field(field) => selections[..index]
                .iter()
                .any(|earlier| matches!(earlier, Selection::Field(e) if e.key == field.key)),
        })
}

fn collect_into(schema: &Schema, items: &[Selection], runtime: &Name, out: &mut Vec<Field>) {
    for item in items {
        match item {
            Selection::Field(field) => {
                if let Some(existing) = out.iter_mut().find(|existing| existing.key == field.key) {
                    existing.selections.extend(field.selections.iter().cloned());
                    // Denied anywhere it is selected: denied.
                    existing.denied |= field.denied;
                } else {
                    out.push(field.clone());
                }
            }
            Selection::Fragment(fragment) => {
                if applies(schema, &fragment.on, runtime) {
                    collect_into(schema, &fragment.selections, runtime, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "
        type Query { node(id: ID!): Node animals: [Animal] me: User }
        interface Node { id: ID! }
        type User implements Node { id: ID! name: String friends: [User] }
        type Dog implements Node { id: ID! barks: Boolean name: String }
        union Animal = Dog | User
    ";

    fn run(query: &str, variables: &str) -> Normalized {
        let schema = Schema::parse_and_validate(SDL, "schema.graphql").unwrap();
        let document = ExecutableDocument::parse_and_validate(&schema, query, "q.graphql").unwrap();
        let operation = document.operations.get(None).unwrap();
        let variables: JsonMap = serde_json::from_str(variables).unwrap();
        let variables =
            apollo_compiler::request::coerce_variable_values(&schema, operation, &variables)
                .unwrap();
        normalize(&schema, &document, operation, &variables)
    }

    fn keys(fields: &[Field]) -> Vec<&str> {
        fields.iter().map(|field| field.key.as_str()).collect()
    }

    #[test]
    fn fragments_on_objects_flatten_and_fields_merge() {
        let op = run(
            "query { me { id ...F ... on User { name friends { id } } friends { name } } }
             fragment F on User { id name }",
            "{}",
        );
        let me = &op.fields[0];
        let fields: Vec<Field> = me
            .selections
            .iter()
            .map(|s| match s {
                Selection::Field(f) => f.clone(),
                Selection::Fragment(_) => panic!("fragment left under an object: {s:?}"),
            })
            .collect();
        assert_eq!(keys(&fields), vec!["id", "name", "friends"]);
        let friends: Vec<_> = fields[2]
            .selections
            .iter()
            .map(|s| match s {
                Selection::Field(f) => f.key.as_str(),
                Selection::Fragment(_) => "fragment",
            })
            .collect();
        assert_eq!(friends, vec!["id", "name"]);
    }

    #[test]
    fn skip_and_include_follow_variables_and_defaults() {
        let query = "query($a: Boolean!, $b: Boolean = true) {
            me { id @skip(if: $a) name @include(if: $b) friends @include(if: false) { id } } }";
        let op = run(query, r#"{"a": true}"#);
        let Selection::Field(only) = &op.fields[0].selections[0] else {
            panic!()
        };
        assert_eq!(op.fields[0].selections.len(), 1);
        assert_eq!(only.key, "name");
        let op = run(query, r#"{"a": false, "b": false}"#);
        assert_eq!(op.fields[0].selections.len(), 1);
        let schema = Schema::parse_and_validate(SDL, "s").unwrap();
        let document = ExecutableDocument::parse_and_validate(&schema, query, "q").unwrap();
        assert_eq!(condition_variables(&document), vec!["a", "b"]);
    }

    #[test]
    fn abstract_positions_keep_fragments_until_the_runtime_type_is_known() {
        let op = run(
            "{ animals { __typename ... on Dog { barks } ... on Node { id } ... on User { name } } }",
            "{}",
        );
        let schema = Schema::parse_and_validate(SDL, "s").unwrap();
        let animals = &op.fields[0];
        assert_eq!(animals.selections.len(), 4);
        let dog = collect(&schema, &animals.selections, &Name::new_unchecked("Dog"));
        assert_eq!(keys(&dog), vec!["__typename", "barks", "id"]);
        let user = collect(&schema, &animals.selections, &Name::new_unchecked("User"));
        assert_eq!(keys(&user), vec!["__typename", "id", "name"]);
    }
}
