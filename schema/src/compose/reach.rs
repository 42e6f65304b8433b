//! Whether each field can be resolved at all: some subgraph that defines it (not as
//! `@external`) must be able to get to its type — from its own root fields, through an entity
//! key the gateway can call it with, or down fields it resolves from there. A field defined
//! only where its type cannot be reached is `SATISFIABILITY_ERROR`, as Apollo names it.
//!
//! This is a necessary condition, not Apollo's full path-by-path analysis: it finds fields no
//! query can ever reach, and lets through the subtler cases where some paths work.

use std::collections::HashSet;

use super::error::Error;
use super::merge::Merged;
use super::model::{Field, Kind, Subgraph, Type};

/// Resolved here: not external, or a key field of a type the subgraph only extends.
fn resolves(ty: &Type, field: &Field) -> bool {
    !field.external || (field.in_key && (ty.extends || !ty.defined))
}

/// The types each subgraph can get to, given the types reachable anywhere.
fn reachable(subgraphs: &[Subgraph]) -> Vec<HashSet<String>> {
    let mut reach: Vec<HashSet<String>> = vec![HashSet::new(); subgraphs.len()];
    loop {
        let anywhere: HashSet<String> = reach.iter().flatten().cloned().collect();
        let mut changed = false;
        for (index, subgraph) in subgraphs.iter().enumerate() {
            let mut stack: Vec<String> = subgraph
                .types
                .iter()
                .filter(|(name, ty)| {
                    matches!(name.as_str(), "Query" | "Mutation" | "Subscription")
                        || (anywhere.contains(name.as_str())
                            && ty.keys.iter().any(|k| k.resolvable))
                })
                .map(|(name, _)| name.to_string())
                .collect();
            while let Some(name) = stack.pop() {
                if !reach[index].insert(name.clone()) {
                    continue;
                }
                changed = true;
                let Some(ty) = subgraph.types.get(name.as_str()) else {
                    continue;
                };
                for field in ty.fields.values().filter(|f| resolves(ty, f)) {
                    stack.push(field.ty.inner_named_type().to_string());
                }
                stack.extend(ty.members.iter().map(ToString::to_string));
                if ty.kind == Kind::Interface {
                    stack.extend(
                        subgraph
                            .types
                            .iter()
                            .filter(|(_, t)| t.implements.iter().any(|i| *i == name.as_str()))
                            .map(|(n, _)| n.to_string()),
                    );
                }
            }
        }
        if !changed {
            return reach;
        }
    }
}

pub(crate) fn check(subgraphs: &[Subgraph], merged: &Merged) -> Vec<Error> {
    let reach = reachable(subgraphs);
    let anywhere: HashSet<&String> = reach.iter().flatten().collect();
    let mut errors = Vec::new();
    for (type_name, merged_type) in &merged.types {
        if !anywhere.contains(&type_name.to_string()) {
            continue;
        }
        for field_name in merged_type.fields.keys() {
            let mut defined = false;
            let mut reached = false;
            for (index, subgraph) in subgraphs.iter().enumerate() {
                let Some(ty) = subgraph.types.get(type_name) else {
                    continue;
                };
                // An @interfaceObject's fields reach the implementations through it.
                let home = if ty.fields.contains_key(field_name) {
                    Some(ty)
                } else {
                    ty.implements
                        .iter()
                        .filter_map(|i| subgraph.types.get(i))
                        .find(|i| i.interface_object && i.fields.contains_key(field_name))
                };
                let Some(home) = home else { continue };
                if !resolves(home, &home.fields[field_name]) {
                    continue;
                }
                defined = true;
                // An interface's field is resolved on the implementations it has here.
                let implementation_reached = ty.kind == Kind::Interface
                    && subgraph.types.iter().any(|(name, t)| {
                        t.implements.iter().any(|i| i == type_name)
                            && reach[index].contains(name.as_str())
                    });
                reached |= reach[index].contains(type_name.as_str())
                    || home.interface_object
                    || implementation_reached;
            }
            if defined && !reached {
                errors.push(
                    Error::new(
                        "SATISFIABILITY_ERROR",
                        format!(
                            "{type_name}.{field_name} cannot be resolved: no subgraph that defines it can reach type {type_name} (it is neither returned by one of that subgraph's fields it can get to nor an entity with a resolvable key there)"
                        ),
                    )
                    .at(format!("{type_name}.{field_name}")),
                );
            }
        }
    }
    errors
}
