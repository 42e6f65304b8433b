//! The one argument convention every list field shares: `where`, `order_by`, `limit`, `offset`.
//!
//! This module builds the GraphQL input types for a type's fields (`UserBoolExp`,
//! `StringComparison`, `UserOrderBy`, …) and parses argument values into database-neutral
//! values ([`BoolExp`], [`OrderBy`]) that each subgraph translates into its own query language.
//! Field names in those values are GraphQL names; only the subgraph maps them to columns.
//!
//! ```graphql
//! users(where: {_or: [{name: {_ilike: "%ada%"}}, {orders: {total: {_gt: 100}}}]},
//!       order_by: [{created_at: DESC}], limit: 10)
//! ```

use async_graphql::Value;
use async_graphql::dynamic::{Enum, EnumItem, Field, InputObject, InputValue, TypeRef};
use indexmap::IndexMap;

/// Most values one `_in`/`_nin` list may hold: longer lists are refused, not sent to the
/// database as one giant parameter.
pub const MAX_IN_LIST: usize = 10_000;

/// The kinds of scalar a comparison can be made on; decides which operators a field gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarKind {
    Id,
    Int,
    BigInt,
    Float,
    Decimal,
    String,
    Boolean,
    DateTime,
    Date,
    Json,
}

impl ScalarKind {
    /// The GraphQL scalar this kind is exposed as.
    pub fn graphql_name(self) -> &'static str {
        match self {
            ScalarKind::Id => "ID",
            ScalarKind::Int => "Int",
            ScalarKind::BigInt => "BigInt",
            ScalarKind::Float => "Float",
            ScalarKind::Decimal => "Decimal",
            ScalarKind::String => "String",
            ScalarKind::Boolean => "Boolean",
            ScalarKind::DateTime => "DateTime",
            ScalarKind::Date => "Date",
            ScalarKind::Json => "JSON",
        }
    }

    /// Whether the scalar is one of GraphQL's own (so it needs no declaration).
    pub fn is_builtin(self) -> bool {
        matches!(
            self,
            ScalarKind::Id
                | ScalarKind::Int
                | ScalarKind::Float
                | ScalarKind::String
                | ScalarKind::Boolean
        )
    }

    /// Whether `sum` and `avg` make sense.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ScalarKind::Int | ScalarKind::BigInt | ScalarKind::Float | ScalarKind::Decimal
        )
    }

    /// Whether `min` and `max` make sense.
    pub fn is_ordered(self) -> bool {
        !matches!(self, ScalarKind::Boolean | ScalarKind::Json)
    }

    fn operators(self) -> &'static [Operator] {
        use Operator::{Eq, Gt, Gte, ILike, In, IsNull, Like, Lt, Lte, Neq, Nin};
        match self {
            ScalarKind::String => &[Eq, Neq, Gt, Gte, Lt, Lte, In, Nin, IsNull, Like, ILike],
            ScalarKind::Boolean | ScalarKind::Json => &[Eq, Neq, IsNull],
            _ => &[Eq, Neq, Gt, Gte, Lt, Lte, In, Nin, IsNull],
        }
    }

    fn comparison_type(self) -> String {
        format!("{}Comparison", self.graphql_name())
    }

    fn list_comparison_type(self) -> String {
        format!("{}ListComparison", self.graphql_name())
    }
}

/// A comparison operator of the `where` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    IsNull,
    Like,
    ILike,
    /// On list fields: the list holds every given value.
    Contains,
}

impl Operator {
    pub const ALL: [Operator; 12] = [
        Operator::Eq,
        Operator::Neq,
        Operator::Gt,
        Operator::Gte,
        Operator::Lt,
        Operator::Lte,
        Operator::In,
        Operator::Nin,
        Operator::IsNull,
        Operator::Like,
        Operator::ILike,
        Operator::Contains,
    ];

    pub fn graphql_name(self) -> &'static str {
        match self {
            Operator::Eq => "_eq",
            Operator::Neq => "_neq",
            Operator::Gt => "_gt",
            Operator::Gte => "_gte",
            Operator::Lt => "_lt",
            Operator::Lte => "_lte",
            Operator::In => "_in",
            Operator::Nin => "_nin",
            Operator::IsNull => "_is_null",
            Operator::Like => "_like",
            Operator::ILike => "_ilike",
            Operator::Contains => "_contains",
        }
    }

    fn from_graphql_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.graphql_name() == name)
    }
}

/// A parsed `where` argument.
#[derive(Clone, Debug, PartialEq)]
pub enum BoolExp {
    And(Vec<BoolExp>),
    Or(Vec<BoolExp>),
    Not(Box<BoolExp>),
    /// `field op value`; `value` is a list for `_in`/`_nin` and a Boolean for `_is_null`.
    Compare {
        field: String,
        operator: Operator,
        value: Value,
    },
    /// Rows whose related rows (through `relationship`) match `predicate`: for an array
    /// relationship, at least one does.
    Related {
        relationship: String,
        predicate: Box<BoolExp>,
    },
}

impl BoolExp {
    /// The expression that matches everything.
    pub fn always() -> Self {
        BoolExp::And(Vec::new())
    }
}

/// Sort direction and where nulls go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
    AscNullsFirst,
    AscNullsLast,
    DescNullsFirst,
    DescNullsLast,
}

const DIRECTIONS: [(&str, Direction); 6] = [
    ("ASC", Direction::Asc),
    ("DESC", Direction::Desc),
    ("ASC_NULLS_FIRST", Direction::AscNullsFirst),
    ("ASC_NULLS_LAST", Direction::AscNullsLast),
    ("DESC_NULLS_FIRST", Direction::DescNullsFirst),
    ("DESC_NULLS_LAST", Direction::DescNullsLast),
];

/// One `order_by` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub direction: Direction,
}

/// The field of a type that `where` and `order_by` can name.
#[derive(Clone, Debug)]
pub struct FilterField {
    pub name: String,
    pub kind: ScalarKind,
    /// A list of `kind` values: compared with `_contains` and `_is_null`, never sorted on.
    pub list: bool,
}

/// A relationship that `where` can follow, to the target type's `BoolExp`.
#[derive(Clone, Debug)]
pub struct FilterRelationship {
    pub name: String,
    pub target_type: String,
}

/// `field` with the standard list arguments over `type_name`'s rows or documents: `where`,
/// `order_by`, `limit`, `offset`.
pub fn list_arguments(field: Field, type_name: &str) -> Field {
    field
        .argument(InputValue::new(
            "where",
            TypeRef::named(bool_exp_type(type_name)),
        ))
        .argument(InputValue::new(
            "order_by",
            TypeRef::named_nn_list(order_by_type(type_name)),
        ))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
}

/// Name of a type's `where` input.
pub fn bool_exp_type(type_name: &str) -> String {
    format!("{type_name}BoolExp")
}

/// Name of a type's `order_by` input.
pub fn order_by_type(type_name: &str) -> String {
    format!("{type_name}OrderBy")
}

pub const ORDER_DIRECTION: &str = "OrderDirection";

/// The input types of `where` and `order_by` for one type.
pub fn input_types(
    type_name: &str,
    fields: &[FilterField],
    relationships: &[FilterRelationship],
) -> Vec<InputObject> {
    let bool_exp = bool_exp_type(type_name);
    let mut filter = InputObject::new(&bool_exp)
        .description(format!(
            "Filter on {type_name}: every field given must match."
        ))
        .field(InputValue::new("_and", TypeRef::named_nn_list(&bool_exp)))
        .field(InputValue::new("_or", TypeRef::named_nn_list(&bool_exp)))
        .field(InputValue::new("_not", TypeRef::named(&bool_exp)));
    for field in fields {
        let comparison = if field.list {
            field.kind.list_comparison_type()
        } else {
            field.kind.comparison_type()
        };
        filter = filter.field(InputValue::new(&field.name, TypeRef::named(comparison)));
    }
    for relationship in relationships {
        filter = filter.field(InputValue::new(
            &relationship.name,
            TypeRef::named(bool_exp_type(&relationship.target_type)),
        ));
    }
    let mut order = InputObject::new(order_by_type(type_name)).description(format!(
        "Sort key of {type_name}: give one field per list element."
    ));
    for field in fields
        .iter()
        .filter(|field| field.kind.is_ordered() && !field.list)
    {
        order = order.field(InputValue::new(
            &field.name,
            TypeRef::named(ORDER_DIRECTION),
        ));
    }
    vec![filter, order]
}

/// The shared comparison inputs (`IntComparison`, …) and the `OrderDirection` enum, for the
/// kinds in use.
pub fn shared_types(kinds: impl IntoIterator<Item = ScalarKind>) -> (Vec<InputObject>, Enum) {
    let mut seen = Vec::new();
    for kind in kinds {
        if !seen.contains(&kind) {
            seen.push(kind);
        }
    }
    let comparisons = seen
        .into_iter()
        .map(|kind| {
            let scalar = kind.graphql_name();
            kind.operators().iter().fold(
                InputObject::new(kind.comparison_type()),
                |object, operator| {
                    let ty = match operator {
                        Operator::In | Operator::Nin => TypeRef::named_nn_list(scalar),
                        Operator::IsNull => TypeRef::named(TypeRef::BOOLEAN),
                        _ => TypeRef::named(scalar),
                    };
                    object.field(InputValue::new(operator.graphql_name(), ty))
                },
            )
        })
        .collect();
    let directions = DIRECTIONS
        .iter()
        .fold(Enum::new(ORDER_DIRECTION), |e, (name, _)| {
            e.item(EnumItem::new(*name))
        });
    (comparisons, directions)
}

/// The comparison inputs of list fields (`StringListComparison { _contains _is_null }`), for
/// the element kinds in use.
pub fn list_comparisons(kinds: impl IntoIterator<Item = ScalarKind>) -> Vec<InputObject> {
    let mut seen = Vec::new();
    for kind in kinds {
        if !seen.contains(&kind) {
            seen.push(kind);
        }
    }
    seen.into_iter()
        .map(|kind| {
            InputObject::new(kind.list_comparison_type())
                .description(format!(
                    "Filter on a list of {}: `_contains` matches lists holding every value given.",
                    kind.graphql_name()
                ))
                .field(InputValue::new(
                    Operator::Contains.graphql_name(),
                    TypeRef::named_nn_list(kind.graphql_name()),
                ))
                .field(InputValue::new(
                    Operator::IsNull.graphql_name(),
                    TypeRef::named(TypeRef::BOOLEAN),
                ))
        })
        .collect()
}

/// A `where` or `order_by` argument that does not fit the schema (validation catches most of
/// these before they get here; this guards the rest).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {argument}: {message}")]
pub struct ArgumentError {
    pub argument: &'static str,
    pub message: String,
}

fn invalid(argument: &'static str, message: impl Into<String>) -> ArgumentError {
    ArgumentError {
        argument,
        message: message.into(),
    }
}

/// For a type and one of its field names: the type a relationship field leads to, or `None` for
/// a column field.
pub type RelationshipTarget<'a> = &'a dyn Fn(&str, &str) -> Option<String>;

/// Parses a `where` value on `type_name`, following relationships through `relationship_target`.
pub fn parse_bool_exp(
    value: &Value,
    type_name: &str,
    relationship_target: RelationshipTarget<'_>,
) -> Result<BoolExp, ArgumentError> {
    let Value::Object(object) = value else {
        return match value {
            Value::Null => Ok(BoolExp::always()),
            _ => Err(invalid("where", "expected an object")),
        };
    };
    let mut parts = Vec::new();
    for (key, value) in object {
        match key.as_str() {
            "_and" | "_or" => {
                let items = match value {
                    Value::List(items) => items
                        .iter()
                        .map(|item| parse_bool_exp(item, type_name, relationship_target))
                        .collect::<Result<Vec<_>, _>>()?,
                    Value::Null => continue,
                    single => vec![parse_bool_exp(single, type_name, relationship_target)?],
                };
                parts.push(if key == "_and" {
                    BoolExp::And(items)
                } else {
                    BoolExp::Or(items)
                });
            }
            "_not" => {
                if !matches!(value, Value::Null) {
                    parts.push(BoolExp::Not(Box::new(parse_bool_exp(
                        value,
                        type_name,
                        relationship_target,
                    )?)));
                }
            }
            field => match relationship_target(type_name, field) {
                Some(target) => {
                    if !matches!(value, Value::Null) {
                        parts.push(BoolExp::Related {
                            relationship: field.to_owned(),
                            predicate: Box::new(parse_bool_exp(
                                value,
                                &target,
                                relationship_target,
                            )?),
                        });
                    }
                }
                None => parts.extend(parse_comparison(field, value)?),
            },
        }
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        BoolExp::And(parts)
    })
}

fn parse_comparison(field: &str, value: &Value) -> Result<Vec<BoolExp>, ArgumentError> {
    let Value::Object(operators) = value else {
        return match value {
            Value::Null => Ok(Vec::new()),
            _ => Err(invalid(
                "where",
                format!("{field}: expected an object of operators"),
            )),
        };
    };
    operators
        .iter()
        .filter(|(_, value)| !matches!(value, Value::Null))
        .map(|(name, value)| {
            let operator = Operator::from_graphql_name(name)
                .ok_or_else(|| invalid("where", format!("{field}: unknown operator {name}")))?;
            match (operator, value) {
                (Operator::In | Operator::Nin | Operator::Contains, Value::List(items))
                    if items.len() > MAX_IN_LIST =>
                {
                    return Err(invalid(
                        "where",
                        format!("{field}: {name} takes at most {MAX_IN_LIST} values"),
                    ));
                }
                (Operator::In | Operator::Nin | Operator::Contains, Value::List(_))
                | (Operator::IsNull, Value::Boolean(_)) => {}
                (Operator::In | Operator::Nin | Operator::Contains, other) => {
                    // GraphQL input coercion turns a single value into a one-element list.
                    return Ok(BoolExp::Compare {
                        field: field.to_owned(),
                        operator,
                        value: Value::List(vec![other.clone()]),
                    });
                }
                (Operator::IsNull, _) => {
                    return Err(invalid(
                        "where",
                        format!("{field}: _is_null takes a Boolean"),
                    ));
                }
                (_, Value::List(_) | Value::Object(_)) => {
                    return Err(invalid(
                        "where",
                        format!("{field}: {name} takes a single value"),
                    ));
                }
                _ => {}
            }
            Ok(BoolExp::Compare {
                field: field.to_owned(),
                operator,
                value: value.clone(),
            })
        })
        .collect()
}

/// Parses an `order_by` value: a list of single-key objects, or one such object.
pub fn parse_order_by(value: &Value) -> Result<Vec<OrderBy>, ArgumentError> {
    let items: Vec<&IndexMap<async_graphql::Name, Value>> = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => vec![object],
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(object) => Ok(object),
                _ => Err(invalid("order_by", "expected objects")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("order_by", "expected a list of objects")),
    };
    let mut keys = Vec::new();
    for object in items {
        for (field, direction) in object {
            let name = match direction {
                Value::Null => continue,
                Value::Enum(name) => name.as_str(),
                Value::String(name) => name.as_str(),
                _ => {
                    return Err(invalid(
                        "order_by",
                        format!("{field}: expected a direction"),
                    ));
                }
            };
            let direction = DIRECTIONS
                .iter()
                .find(|(candidate, _)| *candidate == name)
                .map(|(_, direction)| *direction)
                .ok_or_else(|| invalid("order_by", format!("{field}: unknown direction {name}")))?;
            keys.push(OrderBy {
                field: field.to_string(),
                direction,
            });
        }
    }
    Ok(keys)
}

/// Reads a non-negative `limit` or `offset`, capped at `max`.
pub fn parse_count(
    argument: &'static str,
    value: Option<&Value>,
    max: u64,
) -> Result<Option<u64>, ArgumentError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(n) if n <= max => Ok(Some(n)),
            Some(_) => Err(invalid(argument, format!("at most {max}"))),
            None => Err(invalid(argument, "must be a non-negative integer")),
        },
        Some(_) => Err(invalid(argument, "must be an integer")),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, value};

    use super::*;

    fn targets(type_name: &str, field: &str) -> Option<String> {
        (type_name == "User" && field == "orders").then(|| "Order".to_owned())
    }

    fn parse(value: &Value) -> BoolExp {
        parse_bool_exp(value, "User", &targets).unwrap()
    }

    #[test]
    fn comparisons_and_connectives() {
        let exp = parse(
            &value!({ "name": { "_ilike": "%ada%", "_neq": "x" }, "_not": { "id": { "_in": ["1", "2"] } } }),
        );
        assert_eq!(
            exp,
            BoolExp::And(vec![
                BoolExp::Compare {
                    field: "name".into(),
                    operator: Operator::ILike,
                    value: value!("%ada%")
                },
                BoolExp::Compare {
                    field: "name".into(),
                    operator: Operator::Neq,
                    value: value!("x")
                },
                BoolExp::Not(Box::new(BoolExp::Compare {
                    field: "id".into(),
                    operator: Operator::In,
                    value: value!(["1", "2"]),
                })),
            ])
        );
    }

    #[test]
    fn in_lists_are_bounded() {
        let long = Value::List((0..=MAX_IN_LIST).map(|i| Value::from(i as i64)).collect());
        let mut operators = IndexMap::new();
        operators.insert(async_graphql::Name::new("_in"), long);
        let mut columns = IndexMap::new();
        columns.insert(async_graphql::Name::new("id"), Value::Object(operators));
        let error = parse_bool_exp(&Value::Object(columns), "User", &targets).unwrap_err();
        assert!(error.to_string().contains("at most"), "{error}");
    }

    #[test]
    fn relationships_nest() {
        let exp = parse(&value!({ "orders": { "total": { "_gt": 100 } } }));
        // At the Order level, `orders` is not a relationship any more: it parses as a column
        // comparison, which the translator then rejects as an unknown field.
        let nested = parse_bool_exp(
            &value!({ "orders": { "orders": { "_eq": 1 } } }),
            "User",
            &targets,
        )
        .unwrap();
        let BoolExp::Related { predicate, .. } = nested else {
            panic!("{nested:?}")
        };
        assert!(matches!(*predicate, BoolExp::Compare { ref field, .. } if field == "orders"));
        assert_eq!(
            exp,
            BoolExp::Related {
                relationship: "orders".into(),
                predicate: Box::new(BoolExp::Compare {
                    field: "total".into(),
                    operator: Operator::Gt,
                    value: value!(100),
                }),
            }
        );
    }

    #[test]
    fn nulls_mean_no_condition() {
        assert_eq!(parse(&Value::Null), BoolExp::always());
        assert_eq!(
            parse(&value!({ "name": null, "_and": null })),
            BoolExp::always()
        );
        assert_eq!(
            parse(&value!({ "name": { "_eq": null } })),
            BoolExp::always()
        );
    }

    #[test]
    fn bad_shapes_are_errors() {
        let none = |_: &str, _: &str| None;
        assert!(parse_bool_exp(&value!({ "name": { "_eq": ["a"] } }), "User", &none).is_err());
        assert!(parse_bool_exp(&value!({ "name": { "_is_null": "yes" } }), "User", &none).is_err());
        assert!(parse_bool_exp(&value!({ "name": { "$where": "1" } }), "User", &none).is_err());
    }

    #[test]
    fn order_by_lists_and_single_objects() {
        let keys = parse_order_by(&Value::List(vec![
            Value::Object(
                [(Name::new("created_at"), Value::Enum(Name::new("DESC")))]
                    .into_iter()
                    .collect(),
            ),
            Value::Object(
                [(Name::new("id"), Value::Enum(Name::new("ASC")))]
                    .into_iter()
                    .collect(),
            ),
        ]))
        .unwrap();
        assert_eq!(
            keys,
            vec![
                OrderBy {
                    field: "created_at".into(),
                    direction: Direction::Desc
                },
                OrderBy {
                    field: "id".into(),
                    direction: Direction::Asc
                },
            ]
        );
        assert!(parse_order_by(&value!({ "id": "SIDEWAYS" })).is_err());
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(parse_count("limit", Some(&value!(10)), 100), Ok(Some(10)));
        assert!(parse_count("limit", Some(&value!(-1)), 100).is_err());
        assert!(parse_count("limit", Some(&value!(101)), 100).is_err());
        assert_eq!(parse_count("limit", None, 100), Ok(None));
    }
}
