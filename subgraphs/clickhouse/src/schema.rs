//! The analytics schema: configured time series extending other subgraphs' entities, and
//! `trainingRows`. Its fields are answered by the engine ([`crate::engine`]); async-graphql
//! validates and serves introspection.

use async_graphql::Value;
use async_graphql::dynamic::{
    Enum, EnumItem, Field, InputValue, Object, Scalar, Schema, SchemaError, TypeRef,
};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::engine::engine_field;
use polygraph_subgraph_core::engine::{Hook, by_engine};

use crate::model::{Granularity, Model};

/// The schema for `model`'s series and training data.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .extension(Hook)
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity)
        .register(Scalar::new("DateTime").description("A date and time, as an RFC 3339 string."))
        .register(
            Granularity::ALL
                .iter()
                .fold(Enum::new("Granularity"), |e, (name, _)| {
                    e.item(EnumItem::new(*name))
                }),
        );
    for series in &model.series {
        let mut point = Object::new(&series.point_type).field(
            engine_field("start", TypeRef::named_nn("DateTime"))
                .description("Start of the bucket (UTC)."),
        );
        for measure in &series.measures {
            let ty = if measure.integer {
                TypeRef::INT
            } else {
                TypeRef::FLOAT
            };
            point = point.field(engine_field(&measure.name, TypeRef::named(ty)));
        }
        builder = builder.register(CacheHint::apply(series.cache.as_ref(), point));
    }
    for entity in &model.entities {
        let hint = CacheHint::strictest(
            model
                .series
                .iter()
                .filter(|series| series.entity == *entity)
                .map(|series| series.cache),
        );
        builder = builder.register(CacheHint::apply(hint.as_ref(), entity_type(model, entity)));
    }
    if model.series.iter().any(|series| series.cache.is_some()) {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    let mut query = Object::new("Query");
    if let Some(training) = &model.training {
        builder = builder
            .register(
                training
                    .entities
                    .keys()
                    .fold(Enum::new("TrainingEntity"), |e, entity| e.item(EnumItem::new(entity))),
            )
            .register(
                Object::new("TrainingRow")
                    .description("One entity's features as of a moment: `values[j]` is `features[j]`'s latest value at or before it, `observedAt[j]` when that value was recorded.")
                    .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)))
                    .field(engine_field("values", TypeRef::named_nn_list(TypeRef::FLOAT)))
                    .field(engine_field("observedAt", TypeRef::named_nn_list("DateTime"))),
            );
        query = query.field(training_rows());
    }
    builder
        .register(query)
        .entity_resolver(by_engine())
        .finish()
}

fn entity_type(model: &Model, entity: &str) -> Object {
    let mut object = Object::new(entity)
        .key("id")
        .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)));
    for series in model.series.iter().filter(|s| s.entity == entity) {
        object = object.field(
            Field::new(
                &series.field,
                TypeRef::named_nn_list_nn(&series.point_type),
                by_engine(),
            )
            .argument(InputValue::new("from", TypeRef::named_nn("DateTime")))
            .argument(
                InputValue::new("to", TypeRef::named_nn("DateTime")).description("Exclusive."),
            )
            .argument(
                InputValue::new("granularity", TypeRef::named("Granularity"))
                    .default_value(Value::Enum(async_graphql::Name::new("DAY"))),
            )
            .description(format!(
                "{} per bucket between `from` and `to`, computed in ClickHouse.",
                series.field
            )),
        );
    }
    object
}

/// `trainingRows(entity, ids, features, asOf)`.
fn training_rows() -> Field {
    Field::new("trainingRows", TypeRef::named_nn_list_nn("TrainingRow"), by_engine())
    .argument(InputValue::new("entity", TypeRef::named_nn("TrainingEntity")))
    .argument(InputValue::new("ids", TypeRef::named_nn_list_nn(TypeRef::ID)))
    .argument(InputValue::new("features", TypeRef::named_nn_list_nn(TypeRef::STRING)))
    .argument(InputValue::new("asOf", TypeRef::named_nn("DateTime")))
    .description("Training data without leakage: for each id, each feature's latest value at or before `asOf`, never a later one.")
}
