//! The fields of one object type or interface across subgraphs: which subgraphs resolve each
//! (`@external`, `@override`, key fields of extensions), whether they may share it, its
//! merged type and arguments, and the `@join__field`s that say so.

use apollo_compiler::Name;
use apollo_compiler::collections::IndexMap;

use super::error::Error;
use super::merge::{Definitions, JoinField, MergedField, merge_inputs, output_supertype};
use super::model::{Field, Kind, Subgraph, Type};

/// One subgraph's definition of the field.
struct Entry<'a> {
    graph: usize,
    field: &'a Field,
    /// External for real: a key field of a type the subgraph only extends is resolvable there.
    external: bool,
}

/// Whether `general` covers `specific` in some subgraph: an interface it implements or a
/// union it belongs to.
fn covers(subgraphs: &[Subgraph], general: &Name, specific: &Name) -> bool {
    subgraphs.iter().any(|s| {
        s.types
            .get(general)
            .is_some_and(|g| g.members.contains(specific))
            || s.types
                .get(specific)
                .is_some_and(|t| t.implements.contains(general))
    })
}

pub(crate) fn merge(
    subgraphs: &[Subgraph],
    type_name: &Name,
    definitions: &Definitions<'_>,
    errors: &mut Vec<Error>,
) -> IndexMap<Name, MergedField> {
    let mut names: Vec<&Name> = Vec::new();
    for (_, ty) in definitions {
        for name in ty.fields.keys() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut merged = IndexMap::default();
    for name in names {
        let entries: Vec<Entry<'_>> = definitions
            .iter()
            .filter_map(|(graph, ty)| {
                let field = ty.fields.get(name)?;
                entry(&subgraphs[*graph], *graph, ty, field)
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let coordinate = format!("{type_name}.{name}");
        if let Some(field) = merge_field(subgraphs, &coordinate, definitions, &entries, errors) {
            merged.insert(name.clone(), field);
        }
    }
    merged
}

fn entry<'a>(subgraph: &Subgraph, graph: usize, ty: &Type, field: &'a Field) -> Option<Entry<'a>> {
    let extension = ty.extends || !ty.defined;
    let external = field.external && !(field.in_key && extension);
    // Federation 1 marked fields @external to say they exist elsewhere; unused, they say nothing.
    if subgraph.v1 && field.external && !field.in_key && !field.used {
        return None;
    }
    Some(Entry {
        graph,
        field,
        external,
    })
}

fn merge_field(
    subgraphs: &[Subgraph],
    coordinate: &str,
    definitions: &Definitions<'_>,
    entries: &[Entry<'_>],
    errors: &mut Vec<Error>,
) -> Option<MergedField> {
    let name_of = |graph: usize| subgraphs[graph].name.as_str();
    let overrides = overrides(subgraphs, coordinate, entries, errors);
    let (mut joins, resolving) = joins(entries, &overrides);
    check_sharing(subgraphs, coordinate, definitions, &resolving, errors);
    if entries.iter().all(|e| e.external) {
        errors.push(
            Error::new(
                "EXTERNAL_MISSING_ON_BASE",
                format!(
                    "{coordinate} is marked @external in every subgraph that defines it ({}), so no subgraph resolves it",
                    entries.iter().map(|e| name_of(e.graph)).collect::<Vec<_>>().join(", ")
                ),
            )
            .in_subgraph(name_of(entries[0].graph))
            .at(coordinate),
        );
    }
    let ty = merged_type(subgraphs, coordinate, entries, errors)?;
    if entries.iter().any(|e| e.field.ty != ty) {
        for join in &mut joins {
            let entry = entries
                .iter()
                .find(|e| e.graph == join.graph)
                .expect("an entry per join");
            join.ty = Some(entry.field.ty.to_string());
        }
    }
    let with_args: Vec<&Entry<'_>> = entries.iter().filter(|e| !e.external).collect();
    let args_from = if with_args.is_empty() {
        entries.iter().collect()
    } else {
        with_args
    };
    let per_graph: Vec<_> = args_from.iter().map(|e| (e.graph, &e.field.args)).collect();
    let args = merge_inputs(
        subgraphs,
        coordinate,
        &per_graph,
        "REQUIRED_ARGUMENT_MISSING_IN_SOME_SUBGRAPH",
        errors,
    );
    let graphs_with_type = definitions.len();
    if joins.len() == graphs_with_type && joins.iter().all(JoinField::is_plain) {
        joins.clear();
    }
    let marks = {
        let resolving_marks: Vec<_> = entries
            .iter()
            .filter(|e| !e.external)
            .map(|e| &e.field.marks)
            .collect();
        let mut marks = super::merge::merge_marks(resolving_marks.into_iter());
        for entry in entries.iter().filter(|e| e.external) {
            marks.inaccessible |= entry.field.marks.inaccessible;
        }
        marks
    };
    Some(MergedField {
        ty,
        marks,
        args,
        list_size: entries.iter().find_map(|e| e.field.list_size.clone()),
        joins,
    })
}

/// Who overrides whom: (the overriding subgraph, the overridden one, the label).
type Overrides = Vec<(usize, usize, Option<String>)>;

fn overrides(
    subgraphs: &[Subgraph],
    coordinate: &str,
    entries: &[Entry<'_>],
    errors: &mut Vec<Error>,
) -> Overrides {
    let name_of = |graph: usize| subgraphs[graph].name.as_str();
    let mut overrides = Overrides::new();
    for entry in entries {
        let Some(from) = &entry.field.override_from else {
            continue;
        };
        if from == name_of(entry.graph) {
            errors.push(
                Error::new(
                    "OVERRIDE_FROM_SELF_ERROR",
                    format!("{coordinate} in subgraph {from:?} overrides itself"),
                )
                .in_subgraph(from)
                .at(coordinate),
            );
            continue;
        }
        if entry.external {
            errors.push(
                Error::new(
                    "OVERRIDE_COLLISION_WITH_ANOTHER_DIRECTIVE",
                    format!("{coordinate} cannot be both @override and @external"),
                )
                .in_subgraph(name_of(entry.graph))
                .at(coordinate),
            );
        }
        if let Some(source) = entries.iter().find(|e| name_of(e.graph) == from) {
            if source.field.override_from.is_some() {
                errors.push(
                    Error::new(
                        "OVERRIDE_SOURCE_HAS_OVERRIDE",
                        format!("{coordinate} is overridden from subgraph {from:?}, which overrides it too"),
                    )
                    .in_subgraph(name_of(entry.graph))
                    .at(coordinate),
                );
            }
            overrides.push((
                entry.graph,
                source.graph,
                entry.field.override_label.clone(),
            ));
        }
    }
    overrides
}

/// The `@join__field`s of the field, and the entries that resolve it (neither external nor
/// overridden).
fn joins<'e, 'f>(
    entries: &'e [Entry<'f>],
    overrides: &Overrides,
) -> (Vec<JoinField>, Vec<&'e Entry<'f>>) {
    let mut joins = Vec::new();
    let mut resolving: Vec<&Entry<'_>> = Vec::new();
    for entry in entries {
        let mut join = JoinField {
            graph: entry.graph,
            requires: entry.field.requires.clone(),
            provides: entry.field.provides.clone(),
            external: entry.external,
            ..JoinField::default()
        };
        if let Some((_, _, label)) = overrides.iter().find(|(to, _, _)| *to == entry.graph) {
            join.override_from.clone_from(&entry.field.override_from);
            join.override_label.clone_from(label);
        }
        let overridden = overrides.iter().find(|(_, from, _)| *from == entry.graph);
        match overridden {
            Some((_, _, None)) => {
                // Overridden for good: the subgraph only keeps it for its own keys and requires.
                if entry.field.in_key || entry.field.used {
                    join.used_overridden = true;
                    joins.push(join);
                }
                continue;
            }
            Some((_, _, Some(label))) => join.override_label = Some(label.clone()),
            None => {}
        }
        if !entry.external
            && overridden.is_none()
            && !overrides.iter().any(|(to, _, _)| *to == entry.graph)
        {
            resolving.push(entry);
        }
        joins.push(join);
    }
    (joins, resolving)
}

/// The most general of the entries' types, or `FIELD_TYPE_MISMATCH`.
fn merged_type(
    subgraphs: &[Subgraph],
    coordinate: &str,
    entries: &[Entry<'_>],
    errors: &mut Vec<Error>,
) -> Option<apollo_compiler::ast::Type> {
    let name_of = |graph: usize| subgraphs[graph].name.as_str();
    let mut ty = entries[0].field.ty.clone();
    for entry in &entries[1..] {
        if let Some(general) =
            output_supertype(&ty, &entry.field.ty, &|g, s| covers(subgraphs, g, s))
        {
            ty = general;
        } else {
            {
                errors.push(
                    Error::new(
                        "FIELD_TYPE_MISMATCH",
                        format!(
                            "{coordinate} has incompatible types across subgraphs: {} in subgraph {:?} and {} in subgraph {:?}",
                            entries[0].field.ty,
                            name_of(entries[0].graph),
                            entry.field.ty,
                            name_of(entry.graph)
                        ),
                    )
                    .in_subgraph(name_of(entry.graph))
                    .at(coordinate),
                );
                return None;
            }
        }
    }
    Some(ty)
}

/// A field resolved by more than one subgraph must be `@shareable` (or a key field) in each.
fn check_sharing(
    subgraphs: &[Subgraph],
    coordinate: &str,
    definitions: &Definitions<'_>,
    resolving: &[&Entry<'_>],
    errors: &mut Vec<Error>,
) {
    if resolving.len() < 2 {
        return;
    }
    let parent_kind = |graph: usize| {
        definitions
            .iter()
            .find(|(g, _)| *g == graph)
            .map(|(_, t)| (t.kind, t.interface_object))
    };
    if resolving
        .iter()
        .any(|e| !matches!(parent_kind(e.graph), Some((Kind::Object, false))))
    {
        return;
    }
    let unshared: Vec<&str> = resolving
        .iter()
        .filter(|e| !(e.field.shareable || e.field.in_key))
        .map(|e| subgraphs[e.graph].name.as_str())
        .collect();
    if unshared.is_empty() {
        return;
    }
    let all: Vec<&str> = resolving
        .iter()
        .map(|e| subgraphs[e.graph].name.as_str())
        .collect();
    errors.push(
        Error::new(
            "INVALID_FIELD_SHARING",
            format!(
                "non-shareable field {coordinate} is resolved from multiple subgraphs: it is resolved from subgraphs {} and defined as non-shareable in {}",
                all.join(", "),
                unshared.join(", ")
            ),
        )
        .in_subgraph(unshared[0])
        .at(coordinate),
    );
}
