//! The feature store's schema: entity types extended with feature groups, `featureVector`
//! and `putFeatures`, generated from the configured groups. Its fields are answered by the
//! engine ([`crate::engine`]); async-graphql validates and serves introspection.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, InputObject, InputValue, Object, Scalar, Schema, SchemaError, TypeRef,
};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::engine::engine_field;
use polygraph_subgraph_core::engine::{Hook, by_engine};

use crate::model::{FeatureType, Model};

/// `[[FeatureValue]!]!`.
fn matrix_type() -> TypeRef {
    let row = TypeRef::List(Box::new(TypeRef::named("FeatureValue")));
    TypeRef::NonNull(Box::new(TypeRef::List(Box::new(TypeRef::NonNull(
        Box::new(row),
    )))))
}

/// The schema for `model`'s groups.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    let hinted = model.groups.iter().any(|group| group.cache.is_some());
    let inherit = hinted.then(CacheHint::inherit);
    let has_changes = model
        .groups
        .iter()
        .any(|group| group.changed_field.is_some());
    let mut builder = Schema::build(
        "Query",
        Some("Mutation"),
        has_changes.then_some("Subscription"),
    )
        .enable_federation()
        .extension(Hook)
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity)
        .register(Scalar::new("FeatureValue").description("A feature's value: a number, string, Boolean or list of numbers."))
        .register(
            // A feature takes its entity's hint.
            CacheHint::apply(inherit.as_ref(), Object::new("Feature"))
                .description("One named feature of an entity.")
                .field(engine_field("name", TypeRef::named_nn(TypeRef::STRING)))
                .field(engine_field("group", TypeRef::named_nn(TypeRef::STRING)))
                .field(engine_field("value", TypeRef::named("FeatureValue"))),
        )
        .register(
            Object::new("MissingFeature")
                .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)))
                .field(engine_field("name", TypeRef::named_nn(TypeRef::STRING))),
        )
        .register(
            Object::new("FeatureVector")
                .description("Feature values for many entities: `values[i][j]` is `names[j]` of `ids[i]`, null when missing.")
                .field(engine_field("ids", TypeRef::named_nn_list_nn(TypeRef::ID)))
                .field(engine_field("names", TypeRef::named_nn_list_nn(TypeRef::STRING)))
                .field(engine_field("values", matrix_type()))
                .field(engine_field("missing", TypeRef::named_nn_list_nn("MissingFeature"))),
        )
        .register(
            Object::new("PutFeaturesResult")
                .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)))
                .field(engine_field("written", TypeRef::named_nn(TypeRef::INT)))
                .field(engine_field("expiresInSeconds", TypeRef::named(TypeRef::INT))),
        )
        .register(
            InputObject::new("FeatureInput")
                .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("value", TypeRef::named_nn("FeatureValue"))),
        )
        .register(
            model
                .entities
                .iter()
                .fold(Enum::new("FeatureEntity"), |e, entity| e.item(EnumItem::new(entity))),
        );
    for group in &model.groups {
        let mut object = Object::new(&group.type_name).description(format!(
            "The {} features of a {}.",
            group.name, group.entity
        ));
        for feature in &group.features {
            let ty = match feature.kind {
                FeatureType::FloatList => TypeRef::named_nn_list("Float"),
                kind => TypeRef::named(kind.graphql()),
            };
            object = object.field(engine_field(&feature.field, ty));
        }
        builder = builder.register(CacheHint::apply(group.cache.as_ref(), object));
    }
    for entity in &model.entities {
        let hint = CacheHint::strictest(model.groups_of(entity).map(|(_, group)| group.cache));
        builder = builder.register(CacheHint::apply(hint.as_ref(), entity_type(model, entity)));
    }
    if hinted {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    if has_changes {
        let mut subscription = async_graphql::dynamic::Subscription::new("Subscription");
        for group in &model.groups {
            if let Some(name) = &group.changed_field {
                let description = format!(
                    "Each {} after a write to its {} features, as this caller may see them.",
                    group.entity, group.name
                );
                subscription = subscription.field(polygraph_subgraph_core::changes::field(
                    name,
                    &group.entity,
                    description,
                ));
            }
        }
        builder = builder.register(subscription);
    }
    builder
        .register(Object::new("Query").field(feature_vector()))
        .register(Object::new("Mutation").field(put_features()))
        .entity_resolver(by_engine())
        .finish()
}

/// `User @key(fields: "id") { id features(names:) onlineFeatures }`.
fn entity_type(model: &Model, entity: &str) -> Object {
    let mut object = Object::new(entity)
        .key("id")
        .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)));
    for (_, group) in model.groups_of(entity) {
        object = object.field(engine_field(&group.field, TypeRef::named(&group.type_name)));
    }
    object.field(
        Field::new(
            "features",
            TypeRef::named_nn_list_nn("Feature"),
            by_engine(),
        )
        .argument(InputValue::new(
            "names",
            TypeRef::named_nn_list(TypeRef::STRING),
        ))
        .description("Features by name (all of them without `names`)."),
    )
}

/// `featureVector(entity, ids, names)`.
fn feature_vector() -> Field {
    Field::new(
        "featureVector",
        TypeRef::named_nn("FeatureVector"),
        by_engine(),
    )
    .argument(InputValue::new(
        "entity",
        TypeRef::named_nn("FeatureEntity"),
    ))
    .argument(InputValue::new(
        "ids",
        TypeRef::named_nn_list_nn(TypeRef::ID),
    ))
    .argument(InputValue::new(
        "names",
        TypeRef::named_nn_list_nn(TypeRef::STRING),
    ))
    .description("Feature values for many entities at once, for model serving.")
}

/// `putFeatures(entity, id, values)`.
fn put_features() -> Field {
    Field::new(
        "putFeatures",
        TypeRef::named_nn("PutFeaturesResult"),
        by_engine(),
    )
    .argument(InputValue::new(
        "entity",
        TypeRef::named_nn("FeatureEntity"),
    ))
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(InputValue::new(
        "values",
        TypeRef::named_nn_list_nn("FeatureInput"),
    ))
    .description("Writes online features of one entity, all or nothing, with the groups' TTLs.")
}
