//! Field sets (`@key(fields:)`, `@requires(fields:)`, `@provides(fields:)`): parsed as the
//! selection set they are, and walked against one subgraph's types.

use apollo_compiler::ast;
use apollo_compiler::ast::Selection;

use super::model::{Kind, Subgraph};

/// One field a field set selects: the type it is selected on, the field, and its path from
/// the field set's root (`organization.id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selected {
    pub(crate) parent: String,
    pub(crate) field: String,
    pub(crate) depth: usize,
}

/// Parses `fields` as a selection set.
pub(crate) fn parse(fields: &str) -> Result<Vec<Selection>, String> {
    let source = format!("{{{fields}}}");
    let document = ast::Document::parse(source, "fields.graphql").map_err(|errors| {
        errors
            .errors
            .iter()
            .map(|error| error.error.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    match document.definitions.as_slice() {
        [ast::Definition::OperationDefinition(operation)] => Ok(operation.selection_set.clone()),
        _ => Err("not a selection set".to_owned()),
    }
}

/// Every field `fields` selects on `parent` in `subgraph`, in order; an error names a field
/// the type lacks, a leaf with a selection, a composite without one, or an alias (field sets
/// have none; only keys must do without arguments, see `validate`).
pub(crate) fn walk(
    subgraph: &Subgraph,
    parent: &str,
    fields: &str,
) -> Result<Vec<Selected>, String> {
    let selections = parse(fields)?;
    if selections.is_empty() {
        return Err("the field set is empty".to_owned());
    }
    let mut out = Vec::new();
    visit(subgraph, parent, &selections, 0, &mut out)?;
    Ok(out)
}

fn visit(
    subgraph: &Subgraph,
    parent: &str,
    selections: &[Selection],
    depth: usize,
    out: &mut Vec<Selected>,
) -> Result<(), String> {
    let Some(ty) = subgraph.types.get(parent) else {
        return Err(format!("type {parent} is not defined in this subgraph"));
    };
    for selection in selections {
        match selection {
            Selection::Field(field) => {
                if field.alias.is_some() {
                    return Err(format!("field {parent}.{} has an alias", field.name));
                }
                if field.name == "__typename" {
                    continue;
                }
                let Some(definition) = ty.fields.get(&field.name) else {
                    return Err(format!(
                        "cannot query field \"{}\" on type \"{parent}\" (if the field is defined in another subgraph, you need to add it to this subgraph with @external)",
                        field.name
                    ));
                };
                out.push(Selected {
                    parent: parent.to_owned(),
                    field: field.name.to_string(),
                    depth,
                });
                let inner = definition.ty.inner_named_type();
                let composite = subgraph.types.get(inner.as_str()).is_some_and(|t| {
                    matches!(t.kind, Kind::Object | Kind::Interface | Kind::Union)
                });
                match (composite, field.selection_set.is_empty()) {
                    (true, true) => {
                        return Err(format!(
                            "field {parent}.{} of type {} needs a selection of subfields",
                            field.name, definition.ty
                        ));
                    }
                    (false, false) => {
                        return Err(format!(
                            "field {parent}.{} of type {} has no subfields to select",
                            field.name, definition.ty
                        ));
                    }
                    (true, false) => visit(subgraph, inner, &field.selection_set, depth + 1, out)?,
                    (false, true) => {}
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .type_condition
                    .as_ref()
                    .map_or(parent, |name| name.as_str());
                visit(subgraph, on, &fragment.selection_set, depth, out)?;
            }
            Selection::FragmentSpread(spread) => {
                return Err(format!(
                    "named fragments (...{}) are not allowed in a field set",
                    spread.fragment_name
                ));
            }
        }
    }
    Ok(())
}
