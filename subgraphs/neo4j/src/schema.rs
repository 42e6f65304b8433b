//! The relationships schema: each configured relationship a field of its entity, returning
//! the related entities. Its fields are answered by the engine ([`crate::engine`]);
//! async-graphql validates and serves introspection.

use async_graphql::dynamic::{Field, InputValue, Object, Schema, SchemaError, TypeRef};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::engine::engine_field;
use polygraph_subgraph_core::engine::{Hook, by_engine};

use crate::model::Model;

/// The schema for `model`'s entities and relationships.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .extension(Hook)
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity);
    if model
        .entities
        .iter()
        .any(|(_, entity)| entity.cache.is_some())
    {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    for (name, config) in &model.entities {
        let object = Object::new(name);
        let mut object = CacheHint::apply(config.cache.as_ref(), object)
            .key("id")
            .field(engine_field("id", TypeRef::named_nn(TypeRef::ID)));
        for relationship in model.relationships.iter().filter(|r| r.entity == *name) {
            let mut field = Field::new(
                &relationship.field,
                TypeRef::named_nn_list_nn(&relationship.target),
                by_engine(),
            )
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
            .directive(polygraph_subgraph_core::cost::list_size(
                relationship.assumed_size,
                &["limit"],
            ));
            if let Some(description) = &relationship.description {
                field = field.description(description);
            }
            object = object.field(field);
        }
        builder = builder.register(object);
    }
    builder
        .register(Object::new("Query"))
        .entity_resolver(by_engine())
        .finish()
}
