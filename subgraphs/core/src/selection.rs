//! The fields a request selects on a value of one concrete type, as the database translators
//! need them: fragments applied by type condition, `@skip`/`@include` honoured, variables
//! substituted, and fields with the same response key merged.
//!
//! async-graphql's own `SelectionField` iterator flattens every fragment regardless of its type
//! condition and ignores `@skip`/`@include`; a translator that builds one database query for a
//! whole selection tree needs both right, so this walks the operation's syntax tree itself.

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::context::Context;
use async_graphql::parser::types::{Directive, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Variables};
use indexmap::IndexMap;

/// One selected field, possibly selected several times (merged).
#[derive(Debug)]
pub struct SelectedField<'a> {
    /// The alias, or the field name: the key of this field in the response.
    pub response_key: &'a str,
    pub name: &'a str,
    /// Argument values with variables substituted.
    pub arguments: IndexMap<Name, Value>,
    /// The sub-selections of every occurrence, to be collected for the field's type.
    pub selection_sets: Vec<&'a SelectionSet>,
    /// Where the field's first occurrence is in the document, for its errors' `locations`.
    pub position: async_graphql::Pos,
}

impl SelectedField<'_> {
    pub fn argument(&self, name: &str) -> Option<&Value> {
        self.arguments.get(name)
    }

    /// An `ID`, `String` or enum argument as text (an enum literal is an enum value, the same
    /// from a variable a string).
    pub fn text(&self, name: &str) -> Option<String> {
        text(self.argument(name)?)
    }

    /// A list of `ID`s or `String`s as texts (a single value is a list of one).
    pub fn texts(&self, name: &str) -> Vec<String> {
        match self.argument(name) {
            Some(Value::List(items)) => items.iter().filter_map(text).collect(),
            Some(value) => text(value).into_iter().collect(),
            None => Vec::new(),
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Enum(name) => Some(name.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The operation's fragments and variables, for walking selection sets.
#[derive(Clone, Copy)]
pub struct Walker<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a Variables,
    defaults: &'a [Positioned<async_graphql::parser::types::VariableDefinition>],
    /// The schema's types, when known: a fragment on an interface or union then applies to
    /// each of its possible types, not only to a type of its name.
    registry: Option<&'a async_graphql::registry::Registry>,
}

/// An error in the request that validation let through (an unknown fragment, a bad variable).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelectionError(pub String);

impl SelectionError {
    /// The error as the client sees it: `BAD_USER_INPUT`.
    pub fn bad_input(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions as _;
        async_graphql::Error::new(self.0)
            .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
    }
}

impl<'a> Walker<'a> {
    /// The walker for the request `ctx` belongs to.
    pub fn new(ctx: &'a Context<'a>) -> Self {
        Self {
            fragments: &ctx.query_env.fragments,
            variables: &ctx.query_env.variables,
            defaults: &ctx.query_env.operation.node.variable_definitions,
            registry: None,
        }
    }

    /// A walker from the parts of a request, for code that runs outside a resolver.
    pub fn from_parts(
        fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
        variables: &'a Variables,
        defaults: &'a [Positioned<async_graphql::parser::types::VariableDefinition>],
    ) -> Self {
        Self {
            fragments,
            variables,
            defaults,
            registry: None,
        }
    }

    /// The same walker, applying fragments on abstract types by the schema's `registry`.
    #[must_use]
    pub fn with_registry(mut self, registry: &'a async_graphql::registry::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Whether a fragment on `condition` applies to a value of type `type_name`.
    fn applies(&self, condition: &str, type_name: &str) -> bool {
        condition == type_name
            || self.registry.is_some_and(|registry| {
                registry
                    .types
                    .get(condition)
                    .is_some_and(|meta| meta.is_possible_type(type_name))
            })
    }

    /// The fields of `sets` that apply to a value of type `type_name`.
    pub fn collect(
        &self,
        sets: &[&'a SelectionSet],
        type_name: &str,
    ) -> Result<Vec<SelectedField<'a>>, SelectionError> {
        let mut fields: IndexMap<&'a str, SelectedField<'a>> = IndexMap::new();
        for set in sets {
            self.collect_into(set, type_name, &mut fields)?;
        }
        Ok(fields.into_values().collect())
    }

    fn collect_into(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        fields: &mut IndexMap<&'a str, SelectedField<'a>>,
    ) -> Result<(), SelectionError> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if !self.included(&field.node.directives)? {
                        continue;
                    }
                    let key = field.node.response_key().node.as_str();
                    if let Some(existing) = fields.get_mut(key) {
                        existing.selection_sets.push(&field.node.selection_set.node);
                        continue;
                    }
                    let mut arguments = IndexMap::new();
                    for (name, value) in &field.node.arguments {
                        arguments.insert(name.node.clone(), self.resolve(&value.node)?);
                    }
                    fields.insert(
                        key,
                        SelectedField {
                            response_key: key,
                            name: field.node.name.node.as_str(),
                            arguments,
                            selection_sets: vec![&field.node.selection_set.node],
                            position: field.pos,
                        },
                    );
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.node.directives)? {
                        continue;
                    }
                    let name = &spread.node.fragment_name.node;
                    let fragment = self
                        .fragments
                        .get(name)
                        .ok_or_else(|| SelectionError(format!("unknown fragment {name}")))?;
                    if self.applies(
                        fragment.node.type_condition.node.on.node.as_str(),
                        type_name,
                    ) {
                        self.collect_into(&fragment.node.selection_set.node, type_name, fields)?;
                    }
                }
                Selection::InlineFragment(inline) => {
                    if !self.included(&inline.node.directives)? {
                        continue;
                    }
                    let applies = inline.node.type_condition.as_ref().is_none_or(|condition| {
                        self.applies(condition.node.on.node.as_str(), type_name)
                    });
                    if applies {
                        self.collect_into(&inline.node.selection_set.node, type_name, fields)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `@skip(if:)` and `@include(if:)`.
    fn included(&self, directives: &[Positioned<Directive>]) -> Result<bool, SelectionError> {
        for directive in directives {
            let name = directive.node.name.node.as_str();
            if name != "skip" && name != "include" {
                continue;
            }
            let condition = directive
                .node
                .get_argument("if")
                .map(|value| self.resolve(&value.node))
                .transpose()?;
            let condition = matches!(condition, Some(Value::Boolean(true)));
            if (name == "skip") == condition {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A literal with its variables replaced by their values (or their declared defaults).
    pub fn resolve(&self, value: &async_graphql_value::Value) -> Result<Value, SelectionError> {
        value.clone().into_const_with(|name| {
            if let Some(value) = self.variables.get(&name) {
                return Ok(value.clone());
            }
            Ok::<_, SelectionError>(
                self.defaults
                    .iter()
                    .find(|definition| definition.node.name.node == name)
                    .and_then(|definition| definition.node.default_value.as_ref())
                    .map_or(Value::Null, |default| default.node.clone()),
            )
        })
    }
}
