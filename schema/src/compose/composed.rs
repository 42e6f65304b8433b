//! Directives kept through `@composeDirective` that may appear once per element but come from
//! several subgraphs: `@cacheControl` takes the strictest hint of them (the least `maxAge`,
//! `PRIVATE` over `PUBLIC`, `inheritMaxAge` only when every one says so); any other keeps the
//! first subgraph's (by name), so the supergraph stays valid.

use std::collections::HashSet;

use apollo_compiler::Node;
use apollo_compiler::ast::{Argument, Directive, Value};

use super::merge::Merged;
use super::model::{Marks, Subgraph};

pub(crate) fn settle(subgraphs: &[Subgraph], merged: &mut Merged) {
    let once: HashSet<String> = subgraphs
        .iter()
        .flat_map(|s| &s.composed)
        .filter(|(_, c)| !c.definition.repeatable)
        .map(|(name, _)| name.to_string())
        .collect();
    if once.is_empty() {
        return;
    }
    for ty in merged.types.values_mut() {
        settle_marks(&once, &mut ty.marks);
        for field in ty.fields.values_mut() {
            settle_marks(&once, &mut field.marks);
            for argument in field.args.values_mut() {
                settle_marks(&once, &mut argument.marks);
            }
        }
        for input in ty.inputs.values_mut() {
            settle_marks(&once, &mut input.marks);
        }
        for value in ty.values.values_mut() {
            settle_marks(&once, &mut value.marks);
        }
    }
}

fn settle_marks(once: &HashSet<String>, marks: &mut Marks) {
    let mut kept: Vec<Directive> = Vec::new();
    for directive in marks.composed.drain(..) {
        let name = directive.name.as_str();
        match kept.iter_mut().find(|d| d.name == directive.name) {
            Some(first) if once.contains(name) => {
                if name == "cacheControl" {
                    *first = strictest(first, &directive);
                }
            }
            _ => kept.push(directive),
        }
    }
    marks.composed = kept;
}

fn argument<'a>(directive: &'a Directive, name: &str) -> Option<&'a Value> {
    directive
        .arguments
        .iter()
        .find(|a| a.name == name)
        .map(|a| &*a.value)
}

/// The `@cacheControl` both hints allow.
fn strictest(a: &Directive, b: &Directive) -> Directive {
    let max_age = |d: &Directive| match argument(d, "maxAge") {
        Some(Value::Int(n)) => n.try_to_i32().ok(),
        _ => None,
    };
    let private =
        |d: &Directive| matches!(argument(d, "scope"), Some(Value::Enum(s)) if s == "PRIVATE");
    let inherits =
        |d: &Directive| matches!(argument(d, "inheritMaxAge"), Some(Value::Boolean(true)));
    let mut arguments: Vec<Node<Argument>> = Vec::new();
    let mut push = |name: &str, value: Value| {
        if let Ok(name) = apollo_compiler::Name::new(name) {
            arguments.push(Node::new(Argument {
                name,
                value: Node::new(value),
            }));
        }
    };
    match (max_age(a), max_age(b)) {
        (Some(x), Some(y)) => push("maxAge", Value::Int(x.min(y).into())),
        (Some(x), None) | (None, Some(x)) => push("maxAge", Value::Int(x.into())),
        (None, None) => {}
    }
    if private(a) || private(b) {
        push("scope", Value::Enum(apollo_compiler::name!("PRIVATE")));
    }
    if inherits(a) && inherits(b) {
        push("inheritMaxAge", Value::Boolean(true));
    }
    Directive {
        name: a.name.clone(),
        arguments,
    }
}
