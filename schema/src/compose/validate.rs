//! Checks composition makes of each subgraph before merging (its field sets select fields that
//! exist, `@requires` and `@provides` name external fields, Federation 2 has no unused
//! `@external`) and of the merged result (queries exist, nothing visible refers to something
//! `@inaccessible`).

use super::error::Error;
use super::fieldset;
use super::merge::Merged;
use super::model::{Kind, MAX_ALTERNATIVES, Subgraph};

/// What is wrong with one subgraph's keys, `@requires`, `@provides` and `@external`s.
pub(crate) fn subgraph(subgraph: &Subgraph) -> Vec<Error> {
    let mut errors = Vec::new();
    let error = |code: &'static str, coordinate: String, message: String| {
        Error::new(code, message)
            .in_subgraph(&subgraph.name)
            .at(coordinate)
    };
    for (type_name, ty) in &subgraph.types {
        for key in &ty.keys {
            if key_has_arguments(&key.fields) {
                errors.push(error(
                    "KEY_FIELDS_HAS_ARGS",
                    type_name.to_string(),
                    format!(
                        "on type {type_name}, @key(fields: {:?}) selects a field with arguments",
                        key.fields
                    ),
                ));
            } else if let Err(why) = fieldset::walk(subgraph, type_name, &key.fields) {
                errors.push(error(
                    "KEY_INVALID_FIELDS",
                    type_name.to_string(),
                    format!(
                        "on type {type_name}, @key(fields: {:?}) is invalid: {why}",
                        key.fields
                    ),
                ));
            }
        }
        for (field_name, field) in &ty.fields {
            let coordinate = format!("{type_name}.{field_name}");
            if let Some(requires) = &field.requires {
                match fieldset::walk(subgraph, type_name, requires) {
                    Err(why) => errors.push(error(
                        "REQUIRES_INVALID_FIELDS",
                        coordinate.clone(),
                        format!("on field {coordinate}, @requires(fields: {requires:?}) is invalid: {why}"),
                    )),
                    Ok(selected) => {
                        for s in not_external(subgraph, &selected) {
                            errors.push(error(
                                "REQUIRES_FIELDS_MISSING_EXTERNAL",
                                coordinate.clone(),
                                format!(
                                    "on field {coordinate}, @requires(fields: {requires:?}) selects {}.{}, which is not marked @external",
                                    s.parent, s.field
                                ),
                            ));
                        }
                    }
                }
            }
            if let Some(provides) = &field.provides {
                provides_errors(subgraph, &coordinate, &field.ty, provides, &mut errors);
            }
        }
        if !subgraph.v1 {
            unused_externals(subgraph, type_name, &mut errors);
        }
    }
    errors
}

fn key_has_arguments(fields: &str) -> bool {
    fn any(selections: &[apollo_compiler::ast::Selection]) -> bool {
        selections.iter().any(|selection| match selection {
            apollo_compiler::ast::Selection::Field(f) => {
                !f.arguments.is_empty() || any(&f.selection_set)
            }
            apollo_compiler::ast::Selection::InlineFragment(f) => any(&f.selection_set),
            apollo_compiler::ast::Selection::FragmentSpread(_) => false,
        })
    }
    fieldset::parse(fields).is_ok_and(|selections| any(&selections))
}

fn provides_errors(
    subgraph: &Subgraph,
    coordinate: &str,
    ty: &apollo_compiler::ast::Type,
    provides: &str,
    errors: &mut Vec<Error>,
) {
    let error = |code: &'static str, message: String| {
        Error::new(code, message)
            .in_subgraph(&subgraph.name)
            .at(coordinate)
    };
    let target = ty.inner_named_type();
    let composite = subgraph
        .types
        .get(target)
        .is_some_and(|t| matches!(t.kind, Kind::Object | Kind::Interface | Kind::Union));
    if !composite {
        errors.push(error(
            "PROVIDES_ON_NON_OBJECT_FIELD",
            format!("invalid @provides directive on field {coordinate}: field has type {ty} which is not a composite type"),
        ));
        return;
    }
    match fieldset::walk(subgraph, target, provides) {
        Err(why) => errors.push(error(
            "PROVIDES_INVALID_FIELDS",
            format!("on field {coordinate}, @provides(fields: {provides:?}) is invalid: {why}"),
        )),
        Ok(selected) => {
            if subgraph.v1 {
                return;
            }
            for s in not_external(subgraph, &selected) {
                errors.push(error(
                    "PROVIDES_FIELDS_MISSING_EXTERNAL",
                    format!(
                        "on field {coordinate}, @provides(fields: {provides:?}) selects {}.{}, which is not marked @external",
                        s.parent, s.field
                    ),
                ));
            }
        }
    }
}

/// The leaf fields of a `@requires` or `@provides` selection that are neither `@external`
/// nor under an `@external` field (whose whole value comes from elsewhere).
fn not_external<'a>(
    subgraph: &Subgraph,
    selected: &'a [fieldset::Selected],
) -> Vec<&'a fieldset::Selected> {
    let field_external = |parent: &str, field: &str| {
        subgraph
            .types
            .get(parent)
            .and_then(|t| t.fields.get(field))
            .is_some_and(|f| f.external)
    };
    // An interface's field is external when it is in every implementation here.
    let external = |s: &fieldset::Selected| {
        let implementations: Vec<&str> = subgraph
            .types
            .iter()
            .filter(|(_, t)| t.implements.iter().any(|i| i.as_str() == s.parent))
            .map(|(name, _)| name.as_str())
            .collect();
        match subgraph.types.get(s.parent.as_str()) {
            Some(t) if t.kind == Kind::Interface && !implementations.is_empty() => {
                implementations.iter().all(|i| field_external(i, &s.field))
            }
            _ => field_external(&s.parent, &s.field),
        }
    };
    let mut out = Vec::new();
    // Whether each field on the path to the current one is external.
    let mut path: Vec<bool> = Vec::new();
    for (index, s) in selected.iter().enumerate() {
        path.truncate(s.depth);
        let leaf = selected
            .get(index + 1)
            .is_none_or(|next| next.depth <= s.depth);
        if leaf && !external(s) && !path.iter().any(|e| *e) {
            out.push(s);
        }
        path.push(external(s));
    }
    out
}

/// Federation 2: an `@external` field no key, `@requires` or `@provides` uses, and that no
/// interface of its type asks for, says nothing.
fn unused_externals(subgraph: &Subgraph, type_name: &str, errors: &mut Vec<Error>) {
    let ty = &subgraph.types[type_name];
    for (field_name, field) in &ty.fields {
        if !field.external || field.in_key || field.used {
            continue;
        }
        let for_interface = ty.implements.iter().any(|interface| {
            subgraph
                .types
                .get(interface)
                .is_some_and(|i| i.fields.contains_key(field_name))
        });
        if !for_interface {
            errors.push(
                Error::new(
                    "EXTERNAL_UNUSED",
                    format!(
                        "field {type_name}.{field_name} is marked @external but is not used by any federation directive (@key, @provides, @requires) or to satisfy an interface"
                    ),
                )
                .in_subgraph(&subgraph.name)
                .at(format!("{type_name}.{field_name}")),
            );
        }
    }
}

/// What is wrong with the merged supergraph as a whole.
pub(crate) fn merged(merged: &Merged) -> Vec<Error> {
    let mut errors = Vec::new();
    if merged
        .types
        .get("Query")
        .is_none_or(|q| q.fields.is_empty())
    {
        errors.push(Error::new(
            "NO_QUERIES",
            "no queries found in any subgraph: a supergraph must have a query root type",
        ));
    }
    for (type_name, ty) in &merged.types {
        let complex = std::iter::once((type_name.to_string(), &ty.marks)).chain(
            ty.fields
                .iter()
                .map(|(field, f)| (format!("{type_name}.{field}"), &f.marks)),
        );
        for (coordinate, _) in complex.filter(|(_, m)| m.access.too_complex) {
            errors.push(
                Error::new(
                    "ACCESS_TOO_COMPLEX",
                    format!(
                        "the @requiresScopes or @policy alternatives on {coordinate} come to more than {MAX_ALTERNATIVES} when combined"
                    ),
                )
                .at(coordinate),
            );
        }
    }
    let hidden = |name: &str| merged.types.get(name).is_some_and(|t| t.marks.inaccessible);
    for (type_name, ty) in &merged.types {
        if ty.marks.inaccessible {
            continue;
        }
        let mut referenced = |coordinate: String, target: &str| {
            if hidden(target) {
                errors.push(
                    Error::new(
                        "REFERENCED_INACCESSIBLE",
                        format!("{coordinate} is in the API schema but references type {target}, which is @inaccessible"),
                    )
                    .at(coordinate),
                );
            }
        };
        for (field_name, field) in ty.fields.iter().filter(|(_, f)| !f.marks.inaccessible) {
            referenced(
                format!("{type_name}.{field_name}"),
                field.ty.inner_named_type(),
            );
            for (arg, input) in field.args.iter().filter(|(_, a)| !a.marks.inaccessible) {
                referenced(
                    format!("{type_name}.{field_name}({arg}:)"),
                    input.ty.inner_named_type(),
                );
            }
        }
        for (field_name, input) in ty.inputs.iter().filter(|(_, i)| !i.marks.inaccessible) {
            referenced(
                format!("{type_name}.{field_name}"),
                input.ty.inner_named_type(),
            );
        }
        let all_hidden = match ty.kind {
            Kind::Object | Kind::Interface => ty.fields.values().all(|f| f.marks.inaccessible),
            Kind::Input => ty.inputs.values().all(|i| i.marks.inaccessible),
            Kind::Enum => ty.values.values().all(|v| v.marks.inaccessible),
            Kind::Union => ty.members.keys().all(|m| hidden(m)),
            Kind::Scalar => false,
        };
        if all_hidden {
            errors.push(
                Error::new(
                    "ONLY_INACCESSIBLE_CHILDREN",
                    format!("type {type_name} is in the API schema but all of its members are @inaccessible"),
                )
                .at(type_name.as_str()),
            );
        }
    }
    errors
}
