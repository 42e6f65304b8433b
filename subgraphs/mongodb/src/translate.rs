//! Translation, pure: parsed `where` and `order_by` arguments → MongoDB query and sort
//! documents, and aggregates → pipelines. Field names come only from the model; request values
//! only ever appear as operands (`{"rating": {"$gt": 3}}`), never as keys, so a string shaped
//! like `{"$where": …}` is just a string.

use async_graphql::Value;
use mongodb::bson::{Bson, Document, doc};
use polygraph_subgraph_core::aggregate::Function;
use polygraph_subgraph_core::filter::{BoolExp, Direction, Operator, OrderBy};

use crate::convert::{ValueError, to_bson};
use crate::model::{Model, ObjectModel, Shape, Storage};

/// A request that cannot be translated: a bad value, or something MongoDB cannot do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct TranslateError(pub String);

impl From<ValueError> for TranslateError {
    fn from(error: ValueError) -> Self {
        TranslateError(error.0)
    }
}

type Result<T> = std::result::Result<T, TranslateError>;

/// The query document for `exp` on documents of `objects[object]`.
pub fn filter(model: &Model, object: usize, exp: &BoolExp) -> Result<Document> {
    filter_at(model, &model.objects[object], exp, "")
}

fn filter_at(model: &Model, object: &ObjectModel, exp: &BoolExp, prefix: &str) -> Result<Document> {
    Ok(match exp {
        BoolExp::And(items) => match items.as_slice() {
            [] => Document::new(),
            [single] => filter_at(model, object, single, prefix)?,
            items => conjunction(parts(model, object, items, prefix)?),
        },
        // `$or: []` is an error in MongoDB; nothing matches an empty disjunction.
        BoolExp::Or(items) if items.is_empty() => doc! { "$nor": [{}] },
        BoolExp::Or(items) => doc! { "$or": parts(model, object, items, prefix)? },
        BoolExp::Not(inner) => doc! { "$nor": [filter_at(model, object, inner, prefix)?] },
        BoolExp::Compare {
            field,
            operator,
            value,
        } => {
            let model_field = object.field(field).ok_or_else(|| {
                TranslateError(format!("{} has no field {field}", object.type_name))
            })?;
            let Some((storage, _)) = model_field.scalar() else {
                return Err(TranslateError(format!("{field} cannot be compared")));
            };
            let path = format!("{prefix}{}", model_field.path);
            doc! { path: compare(*operator, value, storage)? }
        }
        BoolExp::Related {
            relationship,
            predicate,
        } => {
            let model_field = object.field(relationship).ok_or_else(|| {
                TranslateError(format!("{} has no field {relationship}", object.type_name))
            })?;
            let Shape::Object(nested) = model_field.shape else {
                return Err(TranslateError(format!(
                    "{relationship} is not a nested document"
                )));
            };
            let nested = &model.objects[nested];
            if model_field.list {
                // Some element of the array matches the whole predicate.
                let path = format!("{prefix}{}", model_field.path);
                doc! { path: { "$elemMatch": filter_at(model, nested, predicate, "")? } }
            } else {
                filter_at(
                    model,
                    nested,
                    predicate,
                    &format!("{prefix}{}.", model_field.path),
                )?
            }
        }
    })
}

/// All of `parts`, as one document where their keys allow (`{a: {$gt: 1, $lt: 5}, b: …}`),
/// else as `$and`: the merged form is what every MongoDB-compatible server accepts, including
/// inside `$elemMatch`.
fn conjunction(parts: Vec<Document>) -> Document {
    let mut merged = Document::new();
    for part in &parts {
        for (key, value) in part {
            match (merged.get_mut(key), value) {
                (None, _) => {
                    merged.insert(key.clone(), value.clone());
                }
                (Some(Bson::Document(existing)), Bson::Document(operators))
                    if !key.starts_with('$')
                        && operators
                            .keys()
                            .all(|op| op.starts_with('$') && !existing.contains_key(op))
                        && existing.keys().all(|op| op.starts_with('$')) =>
                {
                    for (op, operand) in operators {
                        existing.insert(op.clone(), operand.clone());
                    }
                }
                _ => return doc! { "$and": parts },
            }
        }
    }
    merged
}

fn parts(
    model: &Model,
    object: &ObjectModel,
    items: &[BoolExp],
    prefix: &str,
) -> Result<Vec<Document>> {
    items
        .iter()
        .map(|item| filter_at(model, object, item, prefix))
        .collect()
}

/// The operator document for one comparison (`{"$gt": 3}`).
fn compare(operator: Operator, value: &Value, storage: Storage) -> Result<Document> {
    let list = |value: &Value| -> Result<Vec<Bson>> {
        match value {
            Value::List(items) => items
                .iter()
                .map(|item| to_bson(item, storage).map_err(TranslateError::from))
                .collect(),
            other => Ok(vec![to_bson(other, storage)?]),
        }
    };
    Ok(match operator {
        Operator::Eq => doc! { "$eq": to_bson(value, storage)? },
        // Like `_neq` elsewhere: documents whose value is null or missing are kept.
        Operator::Neq => doc! { "$ne": to_bson(value, storage)? },
        Operator::Gt => doc! { "$gt": to_bson(value, storage)? },
        Operator::Gte => doc! { "$gte": to_bson(value, storage)? },
        Operator::Lt => doc! { "$lt": to_bson(value, storage)? },
        Operator::Lte => doc! { "$lte": to_bson(value, storage)? },
        Operator::In => doc! { "$in": list(value)? },
        Operator::Nin => doc! { "$nin": list(value)? },
        Operator::Contains => doc! { "$all": list(value)? },
        Operator::IsNull => {
            if matches!(value, Value::Boolean(true)) {
                doc! { "$eq": Bson::Null }
            } else {
                doc! { "$ne": Bson::Null }
            }
        }
        Operator::Like | Operator::ILike => {
            let Value::String(pattern) = value else {
                return Err(TranslateError(format!(
                    "{} takes a string",
                    operator.graphql_name()
                )));
            };
            let options = if operator == Operator::ILike {
                "is"
            } else {
                "s"
            };
            doc! { "$regex": like_to_regex(pattern), "$options": options }
        }
    })
}

/// A SQL `LIKE` pattern as an anchored regular expression: `%` is any run, `_` any one
/// character, `\` escapes the next character; everything else matches itself literally.
///
/// Written so that matching cannot backtrack catastrophically: `.*a.*a.*a…!` over a long run of
/// `a`s takes time exponential in the number of `%`s, so each segment between two `%`s is an
/// atomic group matching its first occurrence (`(?>.*?seg)`), which never gives back what it
/// took. Taking each segment's first occurrence is exactly right for patterns whose only runs
/// are `%` (an earlier match leaves more room for the rest); the last segment is anchored at the
/// end after one `.*`, which backtracks at most once across the text.
pub fn like_to_regex(pattern: &str) -> String {
    // Segments between `%`s, each already in regex form.
    let mut segments = vec![String::new()];
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let segment = segments.last_mut().expect("never empty");
        match c {
            '%' => segments.push(String::new()),
            '_' => segment.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    push_literal(segment, next);
                }
            }
            other => push_literal(segment, other),
        }
    }
    let mut regex = String::from("^");
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        if index == 0 {
            regex.push_str(segment);
        } else if index == last {
            regex.push_str(".*");
            regex.push_str(segment);
        } else if !segment.is_empty() {
            regex.push_str("(?>.*?");
            regex.push_str(segment);
            regex.push(')');
        }
    }
    regex.push('$');
    regex
}

fn push_literal(regex: &mut String, c: char) {
    if "\\^$.|?*+()[]{}/-".contains(c) {
        regex.push('\\');
    }
    regex.push(c);
}

/// The sort document for `order_by`, with `_id` last so pages are stable.
pub fn sort(object: &ObjectModel, order_by: &[OrderBy]) -> Result<Document> {
    let mut sort = Document::new();
    for key in order_by {
        let field = object
            .field(&key.field)
            .filter(|f| f.scalar().is_some() && !f.list)
            .ok_or_else(|| {
                TranslateError(format!("cannot sort {} by {}", object.type_name, key.field))
            })?;
        let direction = match key.direction {
            Direction::Asc | Direction::AscNullsFirst => 1,
            Direction::Desc | Direction::DescNullsLast => -1,
            Direction::AscNullsLast | Direction::DescNullsFirst => {
                return Err(TranslateError(
                    "MongoDB sorts nulls first ascending and last descending: ASC_NULLS_LAST and DESC_NULLS_FIRST are not available".to_owned(),
                ));
            }
        };
        sort.insert(field.path.clone(), direction);
    }
    if !sort.contains_key("_id") {
        sort.insert("_id", 1);
    }
    Ok(sort)
}

/// One value an aggregate computes, named by its group key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accumulate {
    Count,
    Function { function: Function, path: String },
}

/// `[$match, $group]` computing `outputs` (named `a0`, `a1`, …) over the documents matching
/// `filter`, grouped by `group_by` (a field path) or all together.
pub fn aggregate_pipeline(
    filter: Document,
    group_by: Option<&str>,
    outputs: &[Accumulate],
) -> Vec<Document> {
    let mut group =
        doc! { "_id": group_by.map_or(Bson::Null, |path| Bson::String(format!("${path}"))) };
    for (index, output) in outputs.iter().enumerate() {
        let accumulator = match output {
            Accumulate::Count => doc! { "$sum": 1 },
            Accumulate::Function { function, path } => {
                let operator = match function {
                    Function::Sum => "$sum",
                    Function::Avg => "$avg",
                    Function::Min => "$min",
                    Function::Max => "$max",
                };
                doc! { operator: format!("${path}") }
            }
        };
        group.insert(format!("a{index}"), accumulator);
    }
    vec![doc! { "$match": filter }, doc! { "$group": group }]
}

#[cfg(test)]
mod tests {
    use async_graphql::value;
    use polygraph_subgraph_core::filter::parse_bool_exp;
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::model;

    fn model() -> Model {
        let config =
            Config::from_yaml("collections: { reviews: { type: Review, key: review_id } }")
                .unwrap();
        let schema = json!({
            "bsonType": "object",
            "required": ["review_id", "rating"],
            "properties": {
                "review_id": { "bsonType": "long" },
                "rating": { "bsonType": "int" },
                "title": { "bsonType": "string" },
                "tags": { "bsonType": "array", "items": { "bsonType": "string" } },
                "author": { "bsonType": "object", "properties": { "name": { "bsonType": "string" } } },
                "comments": { "bsonType": "array", "items": { "bsonType": "object", "properties": { "votes": { "bsonType": "int" }, "text": { "bsonType": "string" } } } },
            }
        });
        model::build(&config, &[schema]).unwrap()
    }

    fn translate(model: &Model, value: &Value) -> Result<Document> {
        let exp = parse_bool_exp(value, "Review", &|type_name, field| {
            model.nested_type(type_name, field)
        })
        .unwrap();
        filter(model, 0, &exp)
    }

    #[test]
    fn filters_translate_to_query_documents() {
        let model = model();
        let query = translate(
            &model,
            &value!({
                "review_id": { "_in": ["1", "2"] },
                "rating": { "_gte": 4, "_neq": 5 },
                "title": { "_ilike": "%great_ (50%)%" },
                "tags": { "_contains": ["new"] },
                "author": { "name": { "_eq": "Ada" } },
                "comments": { "votes": { "_gt": 1 }, "text": { "_is_null": false } },
                "_or": [{ "rating": { "_eq": 1 } }, { "_not": { "title": { "_like": "x\\%" } } }],
            }),
        )
        .unwrap();
        insta::assert_snapshot!(serde_json::to_string_pretty(&query).unwrap());
    }

    #[test]
    fn bad_values_are_clean_errors() {
        let model = model();
        let error = translate(
            &model,
            &value!({ "review_id": { "_eq": "1; db.dropDatabase()" } }),
        )
        .unwrap_err();
        assert!(error.0.contains("is not an integer"), "{error}");
    }

    #[test]
    fn like_patterns_escape_every_metacharacter() {
        assert_eq!(like_to_regex("a.b%c_(d)$"), "^a\\.b.*c.\\(d\\)\\$$");
        assert_eq!(like_to_regex("100\\%"), "^100%$");
    }

    #[test]
    fn like_patterns_match_middle_segments_atomically() {
        assert_eq!(like_to_regex("abc"), "^abc$");
        assert_eq!(like_to_regex("%"), "^.*$");
        assert_eq!(like_to_regex("%lamp%"), "^(?>.*?lamp).*$");
        assert_eq!(like_to_regex("a%b_%c"), "^a(?>.*?b.).*c$");
        assert_eq!(like_to_regex("%%x%%"), "^(?>.*?x).*$");
        assert_eq!(like_to_regex("%a%a%a%!"), "^(?>.*?a)(?>.*?a)(?>.*?a).*!$");
    }

    #[test]
    fn sorts_end_with_id_and_refuse_unavailable_null_orders() {
        let model = model();
        let object = &model.objects[0];
        let sort = sort(
            object,
            &[OrderBy {
                field: "rating".into(),
                direction: Direction::Desc,
            }],
        )
        .unwrap();
        assert_eq!(sort, doc! { "rating": -1, "_id": 1 });
        assert!(
            super::sort(
                object,
                &[OrderBy {
                    field: "rating".into(),
                    direction: Direction::AscNullsLast
                }]
            )
            .is_err()
        );
        assert!(
            super::sort(
                object,
                &[OrderBy {
                    field: "tags".into(),
                    direction: Direction::Asc
                }]
            )
            .is_err()
        );
    }

    #[test]
    fn aggregates_group_in_one_pipeline() {
        let pipeline = aggregate_pipeline(
            doc! { "product_id": { "$in": [1_i64, 2_i64] } },
            Some("product_id"),
            &[
                Accumulate::Count,
                Accumulate::Function {
                    function: Function::Avg,
                    path: "rating".into(),
                },
            ],
        );
        assert_eq!(
            pipeline[1],
            doc! { "$group": { "_id": "$product_id", "a0": { "$sum": 1 }, "a1": { "$avg": "$rating" } } }
        );
    }
}
