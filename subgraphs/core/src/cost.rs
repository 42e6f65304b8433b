//! What a subgraph tells the gateway's cost estimate about its lists: `@listSize` from the
//! cost spec, imported through the Federation link (v2.9, see [`crate::guard::link_directives`]).

use async_graphql::Value;
use async_graphql::dynamic::Directive;

/// `@listSize(assumedSize:, slicingArguments:, requireOneSlicingArgument: false)`: the list
/// is as long as the largest slicing argument given, else about `assumed`.
pub fn list_size(assumed: u64, slicing: &[&str]) -> Directive {
    Directive::new("listSize")
        .argument("assumedSize", Value::from(assumed))
        .argument(
            "slicingArguments",
            Value::List(slicing.iter().map(|name| Value::from(*name)).collect()),
        )
        .argument("requireOneSlicingArgument", Value::from(false))
}
