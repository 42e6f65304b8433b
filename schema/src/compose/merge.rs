//! Merges the subgraphs' types into the supergraph's: one type per name with the kind they
//! agree on, fields with the most general output type and the most specific argument types,
//! enums and inputs by their union and intersection rules, and for each element which
//! subgraphs have it (the `join__` directives the renderer prints).

use std::collections::HashSet;

use apollo_compiler::Name;
use apollo_compiler::ast;
use apollo_compiler::collections::IndexMap;

use super::error::Error;
use super::model::{Input, Kind, ListSize, Marks, Subgraph, Type};

/// `@join__type` for one subgraph (and one key).
#[derive(Clone, Debug)]
pub(crate) struct JoinType {
    pub(crate) graph: usize,
    pub(crate) key: Option<String>,
    pub(crate) extension: bool,
    pub(crate) resolvable: bool,
    pub(crate) interface_object: bool,
}

/// `@join__field` for one subgraph.
#[derive(Clone, Debug, Default)]
pub(crate) struct JoinField {
    pub(crate) graph: usize,
    pub(crate) requires: Option<String>,
    pub(crate) provides: Option<String>,
    pub(crate) ty: Option<String>,
    pub(crate) external: bool,
    pub(crate) override_from: Option<String>,
    pub(crate) override_label: Option<String>,
    pub(crate) used_overridden: bool,
}

impl JoinField {
    pub(crate) fn is_plain(&self) -> bool {
        self.requires.is_none()
            && self.provides.is_none()
            && self.ty.is_none()
            && !self.external
            && self.override_from.is_none()
            && self.override_label.is_none()
            && !self.used_overridden
    }
}

/// An argument or input field of the supergraph, and the subgraphs that have it.
#[derive(Clone, Debug)]
pub(crate) struct MergedInput {
    pub(crate) ty: ast::Type,
    pub(crate) default: Option<ast::Value>,
    pub(crate) marks: Marks,
    pub(crate) graphs: Vec<usize>,
}

/// A field of an object type or interface in the supergraph.
#[derive(Clone, Debug)]
pub(crate) struct MergedField {
    pub(crate) ty: ast::Type,
    pub(crate) marks: Marks,
    pub(crate) args: IndexMap<Name, MergedInput>,
    pub(crate) list_size: Option<ListSize>,
    /// Empty when every subgraph with the type resolves the field the same way.
    pub(crate) joins: Vec<JoinField>,
}

/// An enum value in the supergraph, and the subgraphs that have it.
#[derive(Clone, Debug)]
pub(crate) struct MergedValue {
    pub(crate) marks: Marks,
    pub(crate) graphs: Vec<usize>,
}

/// A named type in the supergraph.
#[derive(Clone, Debug)]
pub(crate) struct MergedType {
    pub(crate) kind: Kind,
    pub(crate) marks: Marks,
    pub(crate) joins: Vec<JoinType>,
    pub(crate) implements: IndexMap<Name, Vec<usize>>,
    pub(crate) fields: IndexMap<Name, MergedField>,
    pub(crate) inputs: IndexMap<Name, MergedInput>,
    pub(crate) members: IndexMap<Name, Vec<usize>>,
    pub(crate) values: IndexMap<Name, MergedValue>,
    pub(crate) specified_by: Option<String>,
}

/// The merged types, in the order they first appear (subgraphs taken by name).
pub(crate) struct Merged {
    pub(crate) types: IndexMap<Name, MergedType>,
}

/// A type as one subgraph has it, with the subgraph's index.
pub(crate) type Definitions<'a> = Vec<(usize, &'a Type)>;

pub(crate) fn merge(subgraphs: &[Subgraph]) -> Result<Merged, Vec<Error>> {
    let mut errors = Vec::new();
    let mut by_name: IndexMap<Name, Definitions<'_>> = IndexMap::default();
    for (index, subgraph) in subgraphs.iter().enumerate() {
        for (name, ty) in &subgraph.types {
            by_name.entry(name.clone()).or_default().push((index, ty));
        }
    }
    let usage = Usage::of(subgraphs);
    let mut types = IndexMap::default();
    for (name, definitions) in &by_name {
        let Some(kind) = kind(subgraphs, name, definitions, &mut errors) else {
            continue;
        };
        let mut merged = MergedType {
            kind,
            marks: merge_marks(definitions.iter().map(|(_, t)| &t.marks)),
            joins: join_types(subgraphs, definitions),
            implements: IndexMap::default(),
            fields: IndexMap::default(),
            inputs: IndexMap::default(),
            members: IndexMap::default(),
            values: IndexMap::default(),
            specified_by: definitions.iter().find_map(|(_, t)| t.specified_by.clone()),
        };
        for (graph, ty) in definitions {
            for interface in &ty.implements {
                merged
                    .implements
                    .entry(interface.clone())
                    .or_default()
                    .push(*graph);
            }
            for member in &ty.members {
                merged
                    .members
                    .entry(member.clone())
                    .or_default()
                    .push(*graph);
            }
        }
        match kind {
            Kind::Object | Kind::Interface => {
                merged.fields = super::fields::merge(subgraphs, name, definitions, &mut errors);
            }
            Kind::Input => merged.inputs = inputs(subgraphs, name, definitions, &mut errors),
            Kind::Enum => merged.values = values(subgraphs, name, definitions, &usage, &mut errors),
            Kind::Scalar | Kind::Union => {}
        }
        types.insert(name.clone(), merged);
    }
    let mut merged = Merged { types };
    interface_objects(subgraphs, &mut merged);
    super::composed::settle(subgraphs, &mut merged);
    if errors.is_empty() {
        Ok(merged)
    } else {
        Err(errors)
    }
}

/// The kind every subgraph agrees on; an `@interfaceObject` counts as the interface it stands
/// for.
fn kind(
    subgraphs: &[Subgraph],
    name: &Name,
    definitions: &Definitions<'_>,
    errors: &mut Vec<Error>,
) -> Option<Kind> {
    let seen = |ty: &Type| {
        if ty.interface_object {
            Kind::Interface
        } else {
            ty.kind
        }
    };
    let (first_graph, first) = definitions.first()?;
    let kind = seen(first);
    for (graph, ty) in definitions {
        if seen(ty) != kind {
            errors.push(
                Error::new(
                    "TYPE_KIND_MISMATCH",
                    format!(
                        "type {name} is {} in subgraph {:?} but {} in subgraph {:?}",
                        kind.describe(),
                        subgraphs[*first_graph].name,
                        seen(ty).describe(),
                        subgraphs[*graph].name
                    ),
                )
                .in_subgraph(&subgraphs[*graph].name)
                .at(name.as_str()),
            );
            return None;
        }
    }
    if kind == Kind::Interface && definitions.iter().all(|(_, ty)| ty.interface_object) {
        errors.push(
            Error::new(
                "INTERFACE_OBJECT_USAGE_ERROR",
                format!("type {name} is an @interfaceObject in every subgraph, but no subgraph defines the interface"),
            )
            .at(name.as_str()),
        );
        return None;
    }
    Some(kind)
}

pub(crate) fn merge_marks<'a>(all: impl Iterator<Item = &'a Marks>) -> Marks {
    let mut merged = Marks::default();
    for marks in all {
        if merged.description.is_none() {
            merged.description.clone_from(&marks.description);
        }
        merged.inaccessible |= marks.inaccessible;
        for tag in &marks.tags {
            if !merged.tags.contains(tag) {
                merged.tags.push(tag.clone());
            }
        }
        merged.access.require(&marks.access);
        merged.cost = merged.cost.max(marks.cost);
        if merged.deprecated.is_none() {
            merged.deprecated.clone_from(&marks.deprecated);
        }
        for directive in &marks.composed {
            if !merged.composed.contains(directive) {
                merged.composed.push(directive.clone());
            }
        }
    }
    merged
}

/// Whether a subgraph only extends the type (its `@join__type(extension: true)`).
fn is_extension(subgraph: &Subgraph, ty: &Type) -> bool {
    ty.extends || (!subgraph.v1 && !ty.defined)
}

fn join_types(subgraphs: &[Subgraph], definitions: &Definitions<'_>) -> Vec<JoinType> {
    let mut joins = Vec::new();
    for (graph, ty) in definitions {
        let base = JoinType {
            graph: *graph,
            key: None,
            extension: is_extension(&subgraphs[*graph], ty) && !ty.keys.is_empty(),
            resolvable: true,
            interface_object: ty.interface_object,
        };
        if ty.keys.is_empty() {
            joins.push(base.clone());
        }
        for key in &ty.keys {
            joins.push(JoinType {
                key: Some(key.fields.clone()),
                resolvable: key.resolvable,
                ..base.clone()
            });
        }
    }
    joins
}

/// Where each enum is used: as the type of an output field, of an input, or both.
struct Usage {
    outputs: HashSet<Name>,
    inputs: HashSet<Name>,
}

impl Usage {
    fn of(subgraphs: &[Subgraph]) -> Self {
        let mut usage = Self {
            outputs: HashSet::new(),
            inputs: HashSet::new(),
        };
        for ty in subgraphs.iter().flat_map(|s| s.types.values()) {
            for field in ty.fields.values() {
                usage.outputs.insert(field.ty.inner_named_type().clone());
                for arg in field.args.values() {
                    usage.inputs.insert(arg.ty.inner_named_type().clone());
                }
            }
            for input in ty.inputs.values() {
                usage.inputs.insert(input.ty.inner_named_type().clone());
            }
        }
        usage
    }
}

fn values(
    subgraphs: &[Subgraph],
    name: &Name,
    definitions: &Definitions<'_>,
    usage: &Usage,
    errors: &mut Vec<Error>,
) -> IndexMap<Name, MergedValue> {
    let mut all: IndexMap<Name, MergedValue> = IndexMap::default();
    for (graph, ty) in definitions {
        for (value, definition) in &ty.values {
            let merged = all.entry(value.clone()).or_insert_with(|| MergedValue {
                marks: Marks::default(),
                graphs: Vec::new(),
            });
            merged.marks = merge_marks([&merged.marks, &definition.marks].into_iter());
            merged.graphs.push(*graph);
        }
    }
    let as_input = usage.inputs.contains(name);
    let as_output = usage.outputs.contains(name);
    let everywhere = |value: &MergedValue| value.graphs.len() == definitions.len();
    if as_input && as_output {
        // A value hidden by @inaccessible never reaches clients, so it may be partial.
        if let Some((value, partial)) = all
            .iter()
            .find(|(_, v)| !everywhere(v) && !v.marks.inaccessible)
        {
            let missing: Vec<&str> = definitions
                .iter()
                .filter(|(g, _)| !partial.graphs.contains(g))
                .map(|(g, _)| subgraphs[*g].name.as_str())
                .collect();
            errors.push(
                Error::new(
                    "ENUM_VALUE_MISMATCH",
                    format!(
                        "enum {name} is used as both input and output type, so its values must be the same in every subgraph, but {value} is missing in {}",
                        missing.join(", ")
                    ),
                )
                .at(format!("{name}.{value}")),
            );
        }
    } else if as_input {
        all.retain(|_, value| everywhere(value));
        if all.is_empty() {
            errors.push(
                Error::new(
                    "EMPTY_MERGED_ENUM_TYPE",
                    format!("enum {name} is only used as an input and no value is defined in every subgraph that defines it"),
                )
                .at(name.as_str()),
            );
        }
    }
    all
}

/// Input object fields: those every subgraph defines (a required one missing somewhere is an
/// error), with the most specific type.
fn inputs(
    subgraphs: &[Subgraph],
    name: &Name,
    definitions: &Definitions<'_>,
    errors: &mut Vec<Error>,
) -> IndexMap<Name, MergedInput> {
    let per_graph: Vec<(usize, &IndexMap<Name, Input>)> =
        definitions.iter().map(|(g, t)| (*g, &t.inputs)).collect();
    let merged = merge_inputs(
        subgraphs,
        name.as_str(),
        &per_graph,
        "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
        errors,
    );
    if merged.is_empty() && errors.is_empty() {
        errors.push(
            Error::new(
                "EMPTY_MERGED_INPUT_TYPE",
                format!("input type {name} has no field that every subgraph defining it defines"),
            )
            .at(name.as_str()),
        );
    }
    merged
}

/// Arguments or input fields across subgraphs: kept when in every one, typed with the most
/// specific type, defaults agreeing.
pub(crate) fn merge_inputs(
    subgraphs: &[Subgraph],
    parent: &str,
    per_graph: &[(usize, &IndexMap<Name, Input>)],
    missing_code: &'static str,
    errors: &mut Vec<Error>,
) -> IndexMap<Name, MergedInput> {
    let mut all: IndexMap<Name, MergedInput> = IndexMap::default();
    for (graph, inputs) in per_graph {
        for (name, input) in *inputs {
            let coordinate = if missing_code.contains("ARGUMENT") {
                format!("{parent}({name}:)")
            } else {
                format!("{parent}.{name}")
            };
            match all.get_mut(name) {
                None => {
                    all.insert(
                        name.clone(),
                        MergedInput {
                            ty: input.ty.clone(),
                            default: input.default.clone(),
                            marks: input.marks.clone(),
                            graphs: vec![*graph],
                        },
                    );
                }
                Some(merged) => {
                    match input_subtype(&merged.ty, &input.ty) {
                        Some(ty) => merged.ty = ty,
                        None => errors.push(
                            Error::new(
                                if missing_code.contains("ARGUMENT") { "FIELD_ARGUMENT_TYPE_MISMATCH" } else { "FIELD_TYPE_MISMATCH" },
                                format!(
                                    "{coordinate} has incompatible types across subgraphs: {} and {} in subgraph {:?}",
                                    merged.ty, input.ty, subgraphs[*graph].name
                                ),
                            )
                            .in_subgraph(&subgraphs[*graph].name)
                            .at(coordinate.clone()),
                        ),
                    }
                    match (&merged.default, &input.default) {
                        (Some(a), Some(b)) if a.to_string() != b.to_string() => errors.push(
                            Error::new(
                                if missing_code.contains("ARGUMENT") { "FIELD_ARGUMENT_DEFAULT_MISMATCH" } else { "INPUT_FIELD_DEFAULT_MISMATCH" },
                                format!(
                                    "{coordinate} has default {a} in one subgraph and {b} in subgraph {:?}",
                                    subgraphs[*graph].name
                                ),
                            )
                            .in_subgraph(&subgraphs[*graph].name)
                            .at(coordinate.clone()),
                        ),
                        (None, Some(b)) => merged.default = Some(b.clone()),
                        _ => {}
                    }
                    merged.marks = merge_marks([&merged.marks, &input.marks].into_iter());
                    merged.graphs.push(*graph);
                }
            }
        }
    }
    let count = per_graph.len();
    let mut kept = IndexMap::default();
    for (name, input) in all {
        if input.graphs.len() == count {
            kept.insert(name, input);
            continue;
        }
        if input.ty.is_non_null() && input.default.is_none() {
            let missing: Vec<&str> = per_graph
                .iter()
                .filter(|(g, _)| !input.graphs.contains(g))
                .map(|(g, _)| subgraphs[*g].name.as_str())
                .collect();
            let coordinate = if missing_code.contains("ARGUMENT") {
                format!("{parent}({name}:)")
            } else {
                format!("{parent}.{name}")
            };
            errors.push(
                Error::new(
                    missing_code,
                    format!(
                        "{coordinate} is required in some subgraphs but does not appear in {}",
                        missing.join(", ")
                    ),
                )
                .in_subgraph(missing[0])
                .at(coordinate),
            );
        }
    }
    kept
}

/// The more specific of two input types (non-null wins), or `None` when they differ in more.
fn input_subtype(a: &ast::Type, b: &ast::Type) -> Option<ast::Type> {
    use ast::Type as T;
    Some(match (a, b) {
        (T::Named(x) | T::NonNullNamed(x), T::Named(y) | T::NonNullNamed(y)) if x == y => {
            if a.is_non_null() || b.is_non_null() {
                T::NonNullNamed(x.clone())
            } else {
                T::Named(x.clone())
            }
        }
        (T::List(x) | T::NonNullList(x), T::List(y) | T::NonNullList(y)) => {
            let inner = Box::new(input_subtype(x, y)?);
            if a.is_non_null() || b.is_non_null() {
                T::NonNullList(inner)
            } else {
                T::List(inner)
            }
        }
        _ => return None,
    })
}

/// The more general of two output types (nullable wins; an interface or union over the
/// object types it covers), or `None` when neither covers the other.
pub(crate) fn output_supertype(
    a: &ast::Type,
    b: &ast::Type,
    covers: &impl Fn(&Name, &Name) -> bool,
) -> Option<ast::Type> {
    use ast::Type as T;
    Some(match (a, b) {
        (T::Named(x) | T::NonNullNamed(x), T::Named(y) | T::NonNullNamed(y)) => {
            let name = if x == y || covers(x, y) {
                x.clone()
            } else if covers(y, x) {
                y.clone()
            } else {
                return None;
            };
            if a.is_non_null() && b.is_non_null() {
                T::NonNullNamed(name)
            } else {
                T::Named(name)
            }
        }
        (T::List(x) | T::NonNullList(x), T::List(y) | T::NonNullList(y)) => {
            let inner = Box::new(output_supertype(x, y, covers)?);
            if a.is_non_null() && b.is_non_null() {
                T::NonNullList(inner)
            } else {
                T::List(inner)
            }
        }
        _ => return None,
    })
}

/// Fields a subgraph adds to an interface through `@interfaceObject` belong to every object
/// type implementing the interface, resolved by that subgraph.
fn interface_objects(subgraphs: &[Subgraph], merged: &mut Merged) {
    let mut additions: Vec<(Name, Name, MergedField)> = Vec::new();
    for (interface, ty) in &merged.types {
        let object_graphs: Vec<usize> = ty
            .joins
            .iter()
            .filter(|j| j.interface_object)
            .map(|j| j.graph)
            .collect();
        if object_graphs.is_empty() {
            continue;
        }
        for (object, implementation) in &merged.types {
            if !implementation.implements.contains_key(interface) {
                continue;
            }
            for (field_name, field) in &ty.fields {
                if implementation.fields.contains_key(field_name) {
                    continue;
                }
                let joins: Vec<JoinField> = object_graphs
                    .iter()
                    .filter(|g| {
                        subgraphs[**g].types[interface.as_str()]
                            .fields
                            .contains_key(field_name)
                    })
                    .map(|g| JoinField {
                        graph: *g,
                        ..JoinField::default()
                    })
                    .collect();
                if joins.is_empty() {
                    continue;
                }
                additions.push((
                    object.clone(),
                    field_name.clone(),
                    MergedField {
                        joins,
                        ..field.clone()
                    },
                ));
            }
        }
    }
    for (object, field_name, field) in additions {
        if let Some(ty) = merged.types.get_mut(&object) {
            ty.fields.insert(field_name, field);
        }
    }
}
