//! What recorded operations (a persisted-document manifest) use of a schema: the types they
//! touch and the fields they select. A breaking change none of them can notice is safe for
//! the clients that sent them.

use std::collections::HashSet;

use apollo_compiler::Schema;
use apollo_compiler::executable::{ExecutableDocument, Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;

use crate::diff::{Change, Severity};

/// The types and fields some operation uses.
#[derive(Debug, Default)]
pub struct Usage {
    /// Types selected on, returned, or taken as input (input object types with the types of
    /// their fields, since a client may fill any of them).
    types: HashSet<String>,
    /// `Type.field` selected.
    fields: HashSet<String>,
    /// The schema's object types and interfaces (whose fields are judged one by one).
    composite: HashSet<String>,
}

impl Usage {
    /// What `operations` use of `schema`; an operation that does not validate against it is
    /// an error naming it (it would not run today either).
    pub fn of<'a>(
        schema: &Valid<Schema>,
        operations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut usage = Self {
            composite: schema
                .types
                .iter()
                .filter(|(_, ty)| ty.is_object() || ty.is_interface())
                .map(|(name, _)| name.to_string())
                .collect(),
            ..Self::default()
        };
        for (id, text) in operations {
            let document =
                ExecutableDocument::parse_and_validate(schema, text, "operation.graphql")
                    .map_err(|errors| format!("recorded operation {id}: {}", errors.errors))?;
            for operation in document.operations.iter() {
                for variable in &operation.variables {
                    usage.input(schema, variable.ty.inner_named_type());
                }
                usage.selections(schema, &operation.selection_set, &document);
            }
        }
        Ok(usage)
    }

    fn input(&mut self, schema: &Schema, name: &str) {
        if !self.types.insert(name.to_owned()) {
            return;
        }
        if let Some(ExtendedType::InputObject(input)) = schema.types.get(name) {
            for field in input.fields.values() {
                self.input(schema, field.ty.inner_named_type());
            }
        }
    }

    fn selections(&mut self, schema: &Schema, set: &SelectionSet, document: &ExecutableDocument) {
        self.types.insert(set.ty.to_string());
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    self.fields.insert(format!("{}.{}", set.ty, field.name));
                    for argument in &field.definition.arguments {
                        if field.arguments.iter().any(|a| a.name == argument.name) {
                            self.input(schema, argument.ty.inner_named_type());
                        }
                    }
                    self.types
                        .insert(field.definition.ty.inner_named_type().to_string());
                    self.selections(schema, &field.selection_set, document);
                }
                Selection::InlineFragment(fragment) => {
                    self.selections(schema, &fragment.selection_set, document);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                        self.selections(schema, &fragment.selection_set, document);
                    }
                }
            }
        }
    }

    /// Whether some recorded operation could notice `change`: a change to an object's or
    /// interface's field (or its arguments) when the field is selected; to a type, an input
    /// field or an enum value when the type is used at all.
    pub fn notices(&self, change: &Change) -> bool {
        let coordinate = change.coordinate.as_str();
        let head = coordinate
            .split_once('(')
            .map_or(coordinate, |(head, _)| head);
        match head.split_once('.') {
            None => self.types.contains(head),
            Some((ty, _)) if self.composite.contains(ty) => self.fields.contains(head),
            Some((ty, _)) => self.types.contains(ty),
        }
    }

    /// `changes` with each breaking one no recorded operation notices made safe, saying so.
    pub fn judge(&self, changes: Vec<Change>) -> Vec<Change> {
        changes
            .into_iter()
            .map(|mut change| {
                if change.severity == Severity::Breaking && !self.notices(&change) {
                    change.severity = Severity::Safe;
                    change.message.push_str(" (no recorded operation uses it)");
                }
                change
            })
            .collect()
    }
}
