//! Builders the schema's parts share.

use async_graphql::dynamic::{Field, InputValue, TypeRef};
use polygraph_subgraph_core::filter::{self, ScalarKind};

pub(crate) fn scalar_type(kind: ScalarKind, nullable: bool) -> TypeRef {
    if nullable {
        TypeRef::named(kind.graphql_name())
    } else {
        TypeRef::named_nn(kind.graphql_name())
    }
}

pub(crate) fn list_arguments_for(field: Field, type_name: &str) -> Field {
    field
        .argument(InputValue::new(
            "where",
            TypeRef::named(filter::bool_exp_type(type_name)),
        ))
        .argument(InputValue::new(
            "order_by",
            TypeRef::named_nn_list(filter::order_by_type(type_name)),
        ))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
}
