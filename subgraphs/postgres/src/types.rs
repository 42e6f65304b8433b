//! Builders the schema's parts share.

use async_graphql::dynamic::TypeRef;
use polygraph_subgraph_core::filter::ScalarKind;

pub(crate) fn scalar_type(kind: ScalarKind, nullable: bool) -> TypeRef {
    if nullable {
        TypeRef::named(kind.graphql_name())
    } else {
        TypeRef::named_nn(kind.graphql_name())
    }
}
