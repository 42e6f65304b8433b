//! Values between GraphQL and BSON, by each field's storage and GraphQL kind.
//!
//! Request values become BSON of the field's stored type (an `ID` of a `long` field becomes an
//! `Int64`), so comparisons and writes match what is stored; stored values become GraphQL values
//! of the field's kind (`ObjectId` → its hex string, dates → RFC 3339).

use async_graphql::Value;
use mongodb::bson::{Bson, DateTime, Decimal128, oid::ObjectId};
use serde_json::Value as Json;

use crate::model::Storage;

/// A request value that does not fit the field it is for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ValueError(pub String);

fn bad(value: &Value, what: &str) -> ValueError {
    ValueError(format!("{value} is not {what}"))
}

/// A GraphQL value as BSON of `storage`.
pub fn to_bson(value: &Value, storage: Storage) -> Result<Bson, ValueError> {
    if matches!(value, Value::Null) {
        return Ok(Bson::Null);
    }
    Ok(match storage {
        Storage::ObjectId => match value {
            Value::String(text) => Bson::ObjectId(
                ObjectId::parse_str(text).map_err(|_| bad(value, "an ObjectId (24 hex digits)"))?,
            ),
            _ => return Err(bad(value, "an ObjectId")),
        },
        Storage::Long => Bson::Int64(integer(value)?),
        Storage::Int => {
            Bson::Int32(i32::try_from(integer(value)?).map_err(|_| bad(value, "a 32-bit integer"))?)
        }
        Storage::Double => match value {
            Value::Number(number) => {
                Bson::Double(number.as_f64().ok_or_else(|| bad(value, "a number"))?)
            }
            _ => return Err(bad(value, "a number")),
        },
        Storage::Decimal => {
            let text = match value {
                Value::Number(number) => number.to_string(),
                Value::String(text) => text.clone(),
                _ => return Err(bad(value, "a decimal")),
            };
            Bson::Decimal128(
                text.parse::<Decimal128>()
                    .map_err(|_| bad(value, "a decimal"))?,
            )
        }
        Storage::String => match value {
            Value::String(text) => Bson::String(text.clone()),
            Value::Number(number) => Bson::String(number.to_string()),
            Value::Enum(name) => Bson::String(name.to_string()),
            _ => return Err(bad(value, "a string")),
        },
        Storage::Bool => match value {
            Value::Boolean(flag) => Bson::Boolean(*flag),
            _ => return Err(bad(value, "a Boolean")),
        },
        Storage::Date => match value {
            Value::String(text) => Bson::DateTime(
                DateTime::parse_rfc3339_str(text)
                    .or_else(|_| DateTime::parse_rfc3339_str(format!("{text}T00:00:00Z")))
                    .map_err(|_| bad(value, "an RFC 3339 date and time"))?,
            ),
            _ => return Err(bad(value, "a date and time")),
        },
        Storage::Any => any_to_bson(value),
    })
}

/// An integer from a number, or from a string of digits (as `ID`s arrive).
fn integer(value: &Value) -> Result<i64, ValueError> {
    match value {
        Value::Number(number) => number.as_i64().ok_or_else(|| bad(value, "an integer")),
        Value::String(text) => text.parse().map_err(|_| bad(value, "an integer")),
        _ => Err(bad(value, "an integer")),
    }
}

/// A JSON-like value as BSON: objects become documents (their keys are data, never operators:
/// they are only ever stored, not used as queries).
fn any_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Number(number) => number
            .as_i64()
            .map(Bson::Int64)
            .or_else(|| number.as_f64().map(Bson::Double))
            .unwrap_or(Bson::Null),
        Value::String(text) => Bson::String(text.clone()),
        Value::Boolean(flag) => Bson::Boolean(*flag),
        Value::Enum(name) => Bson::String(name.to_string()),
        Value::Binary(bytes) => Bson::String(String::from_utf8_lossy(bytes).into_owned()),
        Value::List(items) => Bson::Array(items.iter().map(any_to_bson).collect()),
        Value::Object(object) => Bson::Document(
            object
                .iter()
                .map(|(key, value)| (key.to_string(), any_to_bson(value)))
                .collect(),
        ),
    }
}

/// A stored value as the JSON of a field of its kind (`id` renders any key as a string).
pub fn to_json(bson: &Bson, id: bool) -> Json {
    if id {
        return key_text(bson).map_or(Json::Null, Json::String);
    }
    let number = |n: f64| serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number);
    match bson {
        Bson::Null | Bson::Undefined => Json::Null,
        Bson::Boolean(flag) => Json::Bool(*flag),
        Bson::Int32(n) => Json::from(*n),
        Bson::Int64(n) => Json::from(*n),
        Bson::Double(n) => number(*n),
        Bson::Decimal128(decimal) => decimal
            .to_string()
            .parse::<f64>()
            .map_or(Json::Null, number),
        Bson::String(text) => Json::String(text.clone()),
        Bson::ObjectId(id) => Json::String(id.to_hex()),
        Bson::DateTime(date) => date
            .try_to_rfc3339_string()
            .map_or(Json::Null, Json::String),
        Bson::Timestamp(stamp) => Json::from(stamp.time),
        Bson::Array(items) => Json::Array(items.iter().map(|item| to_json(item, false)).collect()),
        Bson::Document(document) => Json::Object(
            document
                .iter()
                .map(|(key, value)| (key.clone(), to_json(value, false)))
                .collect(),
        ),
        other => Json::String(other.to_string()),
    }
}

/// A key value as text, the same for the stored value and the `ID` a request sends: numbers in
/// decimal, `ObjectId`s in hex, strings as they are.
pub fn key_text(bson: &Bson) -> Option<String> {
    match bson {
        Bson::ObjectId(id) => Some(id.to_hex()),
        Bson::Int32(n) => Some(n.to_string()),
        Bson::Int64(n) => Some(n.to_string()),
        Bson::Double(n) if n.fract() == 0.0 => Some(format!("{n:.0}")),
        Bson::String(text) => Some(text.clone()),
        Bson::Null | Bson::Undefined => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;

    #[test]
    fn ids_become_the_stored_type_and_back() {
        assert_eq!(to_bson(&value!("17"), Storage::Long), Ok(Bson::Int64(17)));
        assert_eq!(to_json(&Bson::Int64(17), true), serde_json::json!("17"));
        let hex = "65a1b2c3d4e5f60718293a4b";
        let oid = to_bson(&value!(hex), Storage::ObjectId).unwrap();
        assert_eq!(key_text(&oid).as_deref(), Some(hex));
        assert!(to_bson(&value!("x'; drop"), Storage::Long).is_err());
        assert!(to_bson(&value!("nothex"), Storage::ObjectId).is_err());
    }

    #[test]
    fn dates_and_decimals() {
        let date = to_bson(&value!("2024-05-01T10:00:00Z"), Storage::Date).unwrap();
        assert_eq!(
            to_json(&date, false),
            serde_json::json!("2024-05-01T10:00:00Z")
        );
        assert!(to_bson(&value!("yesterday"), Storage::Date).is_err());
        let decimal = to_bson(&value!("12.50"), Storage::Decimal).unwrap();
        assert_eq!(to_json(&decimal, false), serde_json::json!(12.5));
    }

    #[test]
    fn operator_shaped_strings_stay_strings() {
        assert_eq!(
            to_bson(&value!("{\"$ne\": null}"), Storage::String),
            Ok(Bson::String("{\"$ne\": null}".into()))
        );
    }
}
