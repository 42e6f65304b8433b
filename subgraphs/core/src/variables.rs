//! A request's variables checked against the types its operation declares, before the engine
//! runs it (GraphQL's `CoerceVariableValues`).
//!
//! A document is validated once and then answered from the cache for every request with its
//! text, so the values that vary per request are checked here every time: a missing required
//! variable, a `null` where `!` was declared, a string where `Int` was, an input field the type
//! does not have. Declared defaults fill in what was not given. What passes is the same value
//! (strings stay strings, even for enums), so the engine sees what the client sent.

use async_graphql::parser::types::{BaseType, Type, VariableDefinition};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, Positioned, Value, Variables};

/// Why a variable's value does not fit its declared type, phrased for the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VariableError(pub String);

/// The variables for an operation declaring `definitions`: each given value checked, each
/// absent one with a default given it. Variables the operation does not declare are dropped.
pub fn coerce(
    registry: &Registry,
    definitions: &[Positioned<VariableDefinition>],
    given: &Variables,
) -> Result<Variables, VariableError> {
    let mut out = Variables::default();
    for definition in definitions {
        let definition = &definition.node;
        let name = &definition.name.node;
        match given.get(name) {
            Some(value) => {
                check(registry, &definition.var_type.node, value).map_err(|reason| {
                    VariableError(format!("variable ${name} got an invalid value: {reason}"))
                })?;
                // A single value where a list is expected is a list of one.
                let value = match (&definition.var_type.node.base, value) {
                    (BaseType::List(_), Value::List(_) | Value::Null) | (BaseType::Named(_), _) => {
                        value.clone()
                    }
                    (BaseType::List(_), single) => Value::List(vec![single.clone()]),
                };
                out.insert(name.clone(), value);
            }
            None => match &definition.default_value {
                Some(default) => {
                    out.insert(name.clone(), default.node.clone());
                }
                None if !definition.var_type.node.nullable => {
                    return Err(VariableError(format!(
                        "variable ${name} of type {} is required but was not given",
                        definition.var_type.node
                    )));
                }
                None => {}
            },
        }
    }
    Ok(out)
}

/// Whether `value` fits `ty`; why not, if it does not.
fn check(registry: &Registry, ty: &Type, value: &Value) -> Result<(), String> {
    if matches!(value, Value::Null) {
        return if ty.nullable {
            Ok(())
        } else {
            Err(format!("expected a non-null {ty}"))
        };
    }
    match &ty.base {
        BaseType::List(item) => match value {
            Value::List(items) => items.iter().enumerate().try_for_each(|(index, value)| {
                check(registry, item, value).map_err(|reason| format!("at [{index}]: {reason}"))
            }),
            // A single value where a list is expected is a list of one.
            value => check(registry, item, value),
        },
        BaseType::Named(name) => check_named(registry, name, value),
    }
}

fn check_named(registry: &Registry, name: &Name, value: &Value) -> Result<(), String> {
    let mismatch = || Err(format!("expected {name}, got {value}"));
    match registry.types.get(name.as_str()) {
        Some(MetaType::Scalar { is_valid, .. }) => {
            let fits = match name.as_str() {
                "Int" => {
                    matches!(value, Value::Number(n) if n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()))
                }
                "Float" => matches!(value, Value::Number(_)),
                "String" => matches!(value, Value::String(_)),
                "Boolean" => matches!(value, Value::Boolean(_)),
                "ID" => {
                    matches!(value, Value::String(_))
                        || matches!(value, Value::Number(n) if n.is_i64() || n.is_u64())
                }
                _ => is_valid.as_ref().is_none_or(|is_valid| is_valid(value)),
            };
            if fits { Ok(()) } else { mismatch() }
        }
        Some(MetaType::Enum { enum_values, .. }) => match value {
            Value::String(text) if enum_values.contains_key(text.as_str()) => Ok(()),
            Value::Enum(item) if enum_values.contains_key(item.as_str()) => Ok(()),
            _ => mismatch(),
        },
        Some(MetaType::InputObject {
            input_fields,
            oneof,
            ..
        }) => {
            let Value::Object(object) = value else {
                return mismatch();
            };
            if let Some(unknown) = object
                .keys()
                .find(|key| !input_fields.contains_key(key.as_str()))
            {
                return Err(format!("{name} has no field {unknown}"));
            }
            if *oneof {
                let set = object
                    .values()
                    .filter(|v| !matches!(v, Value::Null))
                    .count();
                if object.len() != 1 || set != 1 {
                    return Err(format!("{name} takes exactly one non-null field"));
                }
            }
            for (field_name, field) in input_fields {
                let field_type = Type::new(&field.ty)
                    .ok_or_else(|| format!("{name}.{field_name} has an unreadable type"))?;
                match object.get(field_name.as_str()) {
                    Some(value) => check(registry, &field_type, value)
                        .map_err(|reason| format!("{name}.{field_name}: {reason}"))?,
                    None if !field_type.nullable && field.default_value.is_none() => {
                        return Err(format!("{name}.{field_name} is required"));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        Some(_) => Err(format!("{name} is not an input type")),
        None => Err(format!("unknown type {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::dynamic::{
        Field, FieldFuture, InputObject, InputValue, Object, Schema, TypeRef,
    };

    fn schema() -> Schema {
        let filter = InputObject::new("Filter")
            .field(InputValue::new("id", TypeRef::named_nn(TypeRef::INT)))
            .field(InputValue::new("name", TypeRef::named(TypeRef::STRING)));
        let query = Object::new("Query").field(
            Field::new("f", TypeRef::named(TypeRef::INT), |_| {
                FieldFuture::from_value(None)
            })
            .argument(InputValue::new("where", TypeRef::named("Filter"))),
        );
        Schema::build("Query", None, None)
            .register(filter)
            .register(query)
            .finish()
            .expect("a valid schema")
    }

    fn definitions(text: &str) -> Vec<Positioned<VariableDefinition>> {
        let document = async_graphql::parser::parse_query(text).expect("parses");
        let (_, operation) = document.operations.iter().next().expect("one operation");
        operation.node.variable_definitions.clone()
    }

    fn given(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    #[test]
    fn values_that_fit_pass_and_defaults_fill_in() {
        let schema = schema();
        let registry = schema.registry();
        let defs = definitions("query($n: Int!, $w: Filter, $l: [Int!] = [1]) { f }");
        let out = coerce(
            registry,
            &defs,
            &given(serde_json::json!({"n": 3, "w": {"id": 1}})),
        )
        .expect("fits");
        assert_eq!(out.get("n"), Some(&Value::from(3)));
        assert_eq!(out.get("l"), Some(&Value::List(vec![Value::from(1)])));
    }

    #[test]
    fn values_that_do_not_fit_are_refused_with_the_reason() {
        let schema = schema();
        let registry = schema.registry();
        let defs = definitions("query($n: Int!, $w: Filter) { f }");
        for (variables, reason) in [
            (serde_json::json!({}), "required"),
            (serde_json::json!({"n": null}), "non-null"),
            (serde_json::json!({"n": "3"}), "expected Int"),
            (serde_json::json!({"n": 3_000_000_000_u64}), "expected Int"),
            (
                serde_json::json!({"n": 1, "w": {"id": 1, "x": 2}}),
                "no field x",
            ),
            (
                serde_json::json!({"n": 1, "w": {"name": "a"}}),
                "Filter.id is required",
            ),
            (serde_json::json!({"n": 1, "w": [1]}), "expected Filter"),
        ] {
            let error = coerce(registry, &defs, &given(variables.clone()))
                .expect_err(&variables.to_string());
            assert!(error.0.contains(reason), "{variables}: {error}");
        }
    }
}
