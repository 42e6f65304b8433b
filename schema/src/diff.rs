//! What a candidate API schema changes for the clients of the current one: each change with
//! its coordinate (`Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`) and how it can
//! affect an operation that works today.
//!
//! - **Breaking**: some valid operation stops validating or gets an answer of another shape
//!   (a type, field, argument or enum value removed; a new required argument or input field;
//!   an output that may now be null; an input that must now be given).
//! - **Dangerous**: operations still validate, but a client may see what it did not expect
//!   (a new enum value or union member, a changed default).
//! - **Safe**: nothing a client does today changes (additions, stricter outputs, looser
//!   inputs).

use apollo_compiler::Name;
use apollo_compiler::Schema;
use apollo_compiler::ast::Type;
use apollo_compiler::collections::IndexMap;
use apollo_compiler::schema::{Component, ExtendedType, FieldDefinition, InputValueDefinition};

/// How a change can affect an operation that works today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Safe,
    Dangerous,
    Breaking,
}

impl Severity {
    /// `breaking`, `dangerous` or `safe`: how reports and the registry's JSON name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Breaking => "breaking",
            Self::Dangerous => "dangerous",
            Self::Safe => "safe",
        }
    }

    /// The severity [`Severity::as_str`] names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Breaking, Self::Dangerous, Self::Safe]
            .into_iter()
            .find(|severity| severity.as_str() == name)
    }
}

/// One change between two schemas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub severity: Severity,
    /// Where: `Type`, `Type.field`, `Type.field(argument:)`, `Input.field` or `Enum.VALUE`.
    pub coordinate: String,
    pub message: String,
}

/// The changes from `old` to `new`, types in `old`'s order then the added ones; the built-in
/// and introspection types are left out.
pub fn changes(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut push = |severity, coordinate: String, message: String| {
        changes.push(Change {
            severity,
            coordinate,
            message,
        });
    };
    for (name, before) in &old.types {
        if before.is_built_in() {
            continue;
        }
        match new.types.get(name) {
            None => push(
                Severity::Breaking,
                name.to_string(),
                format!("{} {name} was removed", kind(before)),
            ),
            Some(after) if kind(after) != kind(before) => push(
                Severity::Breaking,
                name.to_string(),
                format!("{name} changed from {} to {}", kind(before), kind(after)),
            ),
            Some(after) => compare_type(name.as_str(), before, after, &mut push),
        }
    }
    for (name, after) in &new.types {
        if !after.is_built_in() && !old.types.contains_key(name) {
            push(
                Severity::Safe,
                name.to_string(),
                format!("{} {name} was added", kind(after)),
            );
        }
    }
    changes
}

fn kind(ty: &ExtendedType) -> &'static str {
    match ty {
        ExtendedType::Scalar(_) => "scalar",
        ExtendedType::Object(_) => "object type",
        ExtendedType::Interface(_) => "interface",
        ExtendedType::Union(_) => "union",
        ExtendedType::Enum(_) => "enum",
        ExtendedType::InputObject(_) => "input type",
    }
}

type Push<'a> = dyn FnMut(Severity, String, String) + 'a;

fn compare_type(name: &str, before: &ExtendedType, after: &ExtendedType, push: &mut Push<'_>) {
    match (before, after) {
        (ExtendedType::Object(old), ExtendedType::Object(new)) => {
            compare_fields(name, &old.fields, &new.fields, push);
            compare_members(
                name,
                "interface",
                &old.implements_interfaces
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>(),
                &new.implements_interfaces
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>(),
                push,
            );
        }
        (ExtendedType::Interface(old), ExtendedType::Interface(new)) => {
            compare_fields(name, &old.fields, &new.fields, push);
        }
        (ExtendedType::Union(old), ExtendedType::Union(new)) => compare_members(
            name,
            "member",
            &old.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            &new.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            push,
        ),
        (ExtendedType::Enum(old), ExtendedType::Enum(new)) => {
            for value in old.values.keys() {
                if !new.values.contains_key(value) {
                    push(
                        Severity::Breaking,
                        format!("{name}.{value}"),
                        format!("enum value {name}.{value} was removed"),
                    );
                }
            }
            for value in new.values.keys() {
                if !old.values.contains_key(value) {
                    push(
                        Severity::Dangerous,
                        format!("{name}.{value}"),
                        format!("enum value {name}.{value} was added: clients may not expect it"),
                    );
                }
            }
        }
        (ExtendedType::InputObject(old), ExtendedType::InputObject(new)) => {
            let old: Vec<&InputValueDefinition> = old.fields.values().map(|f| &***f).collect();
            let new: Vec<&InputValueDefinition> = new.fields.values().map(|f| &***f).collect();
            compare_inputs(name, ".", &old, &new, push);
        }
        _ => {}
    }
}

/// An object's interfaces or a union's members.
fn compare_members(name: &str, what: &str, old: &[&str], new: &[&str], push: &mut Push<'_>) {
    for member in old {
        if !new.contains(member) {
            push(
                Severity::Breaking,
                name.to_owned(),
                format!("{what} {member} was removed from {name}"),
            );
        }
    }
    for member in new {
        if !old.contains(member) {
            push(
                Severity::Dangerous,
                name.to_owned(),
                format!("{what} {member} was added to {name}: fragments on it see more"),
            );
        }
    }
}

type Fields = IndexMap<Name, Component<FieldDefinition>>;

fn compare_fields(name: &str, old: &Fields, new: &Fields, push: &mut Push<'_>) {
    for (field, before) in old {
        let coordinate = format!("{name}.{field}");
        let Some(after) = new.get(field) else {
            push(
                Severity::Breaking,
                coordinate.clone(),
                format!("field {coordinate} was removed"),
            );
            continue;
        };
        if !stricter_or_same(&before.ty, &after.ty) {
            push(
                Severity::Breaking,
                coordinate.clone(),
                format!(
                    "field {coordinate} changed type from {} to {}",
                    before.ty, after.ty
                ),
            );
        } else if before.ty != after.ty {
            push(
                Severity::Safe,
                coordinate.clone(),
                format!(
                    "field {coordinate} changed type from {} to {}",
                    before.ty, after.ty
                ),
            );
        }
        let old: Vec<&InputValueDefinition> = before.arguments.iter().map(|a| &**a).collect();
        let new: Vec<&InputValueDefinition> = after.arguments.iter().map(|a| &**a).collect();
        compare_inputs(&coordinate, "(", &old, &new, push);
    }
    for field in new.keys() {
        if !old.contains_key(field) {
            push(
                Severity::Safe,
                format!("{name}.{field}"),
                format!("field {name}.{field} was added"),
            );
        }
    }
}

/// Arguments (`separator` `(`) or input fields (`.`) of `owner`.
fn compare_inputs(
    owner: &str,
    separator: &str,
    old: &[&InputValueDefinition],
    new: &[&InputValueDefinition],
    push: &mut Push<'_>,
) {
    let coordinate = |name: &str| match separator {
        "(" => format!("{owner}({name}:)"),
        _ => format!("{owner}.{name}"),
    };
    let what = if separator == "(" {
        "argument"
    } else {
        "input field"
    };
    for before in old {
        let at = coordinate(&before.name);
        let Some(after) = new.iter().find(|after| after.name == before.name) else {
            push(
                Severity::Breaking,
                at.clone(),
                format!("{what} {at} was removed"),
            );
            continue;
        };
        // An input may grow looser; it may not grow stricter.
        if !stricter_or_same(&after.ty, &before.ty) {
            let required = after.ty.is_non_null() && after.default_value.is_none();
            push(
                if required {
                    Severity::Breaking
                } else {
                    Severity::Dangerous
                },
                at.clone(),
                format!(
                    "{what} {at} changed type from {} to {}",
                    before.ty, after.ty
                ),
            );
        } else if before.ty != after.ty {
            push(
                Severity::Safe,
                at.clone(),
                format!(
                    "{what} {at} changed type from {} to {}",
                    before.ty, after.ty
                ),
            );
        }
        if before.default_value != after.default_value {
            push(
                Severity::Dangerous,
                at.clone(),
                format!("the default of {what} {at} changed"),
            );
        }
    }
    for after in new {
        if old.iter().any(|before| before.name == after.name) {
            continue;
        }
        let at = coordinate(&after.name);
        if after.ty.is_non_null() && after.default_value.is_none() {
            push(
                Severity::Breaking,
                at.clone(),
                format!("required {what} {at} was added"),
            );
        } else {
            push(Severity::Safe, at.clone(), format!("{what} {at} was added"));
        }
    }
}

/// Whether every value of type `new` is a value of type `old`: the same named type and list
/// nesting, non-null kept or added.
fn stricter_or_same(old: &Type, new: &Type) -> bool {
    match (old, new) {
        (Type::Named(a) | Type::NonNullNamed(a), Type::NonNullNamed(b))
        | (Type::Named(a), Type::Named(b)) => a == b,
        (Type::List(a) | Type::NonNullList(a), Type::NonNullList(b))
        | (Type::List(a), Type::List(b)) => stricter_or_same(a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str) -> Vec<(Severity, String)> {
        let parse = |sdl: &str| Schema::parse_and_validate(sdl, "schema.graphql").unwrap();
        changes(&parse(old), &parse(new))
            .into_iter()
            .map(|change| (change.severity, change.coordinate))
            .collect()
    }

    const BASE: &str = "
        type Query { user(id: ID!, active: Boolean = true): User, search(text: String): [Result!]! }
        interface Node { id: ID! }
        type User implements Node { id: ID!, name: String, role: Role! }
        type Product { id: ID! }
        union Result = User | Product
        enum Role { ADMIN USER }
        input Filter { name: String, limit: Int! }
        type Mutation { find(filter: Filter!): [User] }
    ";

    #[test]
    fn the_same_schema_changes_nothing() {
        assert!(diff(BASE, BASE).is_empty());
    }

    #[test]
    fn removals_and_new_requirements_break_clients() {
        use Severity::Breaking;
        let new = BASE
            .replace("id: ID!, name: String, role", "id: ID!, role")
            .replace(" USER }", " }")
            .replace(
                "input Filter { name: String, limit: Int! }",
                "input Filter { name: String, limit: Int!, page: Int! }",
            )
            .replace(
                "user(id: ID!, active: Boolean = true)",
                "user(id: ID!, active: Boolean = true, tenant: String!)",
            )
            .replace("union Result = User | Product", "union Result = User");
        assert_eq!(
            diff(BASE, &new),
            [
                (Breaking, "Query.user(tenant:)".to_owned()),
                (Breaking, "User.name".to_owned()),
                (Breaking, "Result".to_owned()),
                (Breaking, "Role.USER".to_owned()),
                (Breaking, "Filter.page".to_owned()),
            ]
        );
    }

    #[test]
    fn outputs_may_grow_stricter_and_inputs_looser() {
        use Severity::{Breaking, Safe};
        let safe = BASE
            .replace("id: ID!, name: String,", "id: ID!, name: String!,")
            .replace("user(id: ID!,", "user(id: ID,");
        assert_eq!(
            diff(BASE, &safe),
            [
                (Safe, "Query.user(id:)".to_owned()),
                (Safe, "User.name".to_owned())
            ]
        );
        // The other way round, each breaks someone: a client that assumed non-null, and a
        // client that sends no `text`.
        let breaking = BASE
            .replace("role: Role!", "role: Role")
            .replace("search(text: String)", "search(text: String!)");
        assert_eq!(
            diff(BASE, &breaking),
            [
                (Breaking, "Query.search(text:)".to_owned()),
                (Breaking, "User.role".to_owned())
            ]
        );
    }

    #[test]
    fn additions_are_safe_or_dangerous() {
        use Severity::{Dangerous, Safe};
        let new = format!(
            "{}\n type Review {{ id: ID! }}",
            BASE.replace(" USER }", " USER GUEST }")
                .replace("active: Boolean = true", "active: Boolean = false")
                .replace("role: Role!", "role: Role!, email: String")
        );
        assert_eq!(
            diff(BASE, &new),
            [
                (Dangerous, "Query.user(active:)".to_owned()),
                (Safe, "User.email".to_owned()),
                (Dangerous, "Role.GUEST".to_owned()),
                (Safe, "Review".to_owned()),
            ]
        );
    }
}
