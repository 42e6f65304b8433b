//! Query plans for each federation feature, as readable text snapshots (`tests/snapshots/`).
//! The supergraphs are composed from the subgraph SDLs next to them (`fixtures/compose.sh`).
//! A changed plan shows up in review as a snapshot diff.

use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;

fn plan(fixture: &str, query: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/{fixture}/supergraph.graphql",
        env!("CARGO_MANIFEST_DIR")
    );
    let sdl = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let gateway = Gateway::new(Supergraph::parse(&sdl).unwrap(), Settings::default()).unwrap();
    gateway
        .explain(query, None)
        .unwrap_or_else(|errors| panic!("{fixture}: {errors:?}"))
}

#[test]
fn requires_chain_and_arguments() {
    // shippingCost needs isExpensive, which needs price in USD: three fetches in sequence,
    // and the client's own price in EUR travels beside the required one under an alias.
    insta::assert_snapshot!(plan("requires", "{ products { upc price shippingCost } }"));
}

#[test]
fn provides_saves_a_fetch() {
    insta::assert_snapshot!(
        "provides_in_place",
        plan("provides", "{ reviews { body author { username } } }")
    );
    insta::assert_snapshot!(
        "provides_then_entity",
        plan("provides", "{ reviews { author { username name } } }")
    );
}

#[test]
fn interface_objects() {
    // lastSeen comes from the interface object without knowing the real type …
    insta::assert_snapshot!(
        "interface_field",
        plan("interface-object", "{ accounts { id lastSeen } }")
    );
    // … while fragments on implementations need the subgraph that knows them.
    insta::assert_snapshot!(
        "real_types",
        plan(
            "interface-object",
            "{ recent { lastSeen __typename ... on Admin { level } } }"
        )
    );
}

#[test]
fn shared_root_value_types() {
    insta::assert_snapshot!(plan("shared-root", "{ settings { id name maxUsers } }"));
}

#[test]
fn composite_nested_and_unresolvable_keys() {
    insta::assert_snapshot!("nested_key", plan("keys", "{ items { title quantity } }"));
    // labels can name an Item but not resolve one: catalog is asked, by id, for the nested key.
    insta::assert_snapshot!(
        "through_another_key",
        plan("keys", "{ featured { quantity } }")
    );
}

#[test]
fn override_moves_a_field() {
    insta::assert_snapshot!(plan("override", "{ user(id: \"1\") { name email } }"));
}

#[test]
fn unions_per_member() {
    insta::assert_snapshot!(plan(
        "unions",
        "{ search { __typename ... on Book { title pages } ... on Film { title minutes } } }"
    ));
}

#[test]
fn mutations_run_in_order() {
    insta::assert_snapshot!(plan(
        "mutations",
        "mutation { first: placeOrder(item: \"a\") { id paid } charge(order: \"1\") { amount } cancelOrder(id: \"2\") }"
    ));
}

#[test]
fn skip_include_and_variables() {
    insta::assert_snapshot!(plan(
        "requires",
        "query($upc: ID!, $cur: String = \"EUR\") { product(upc: $upc) { price(currency: $cur) isExpensive @skip(if: true) weight @include(if: false) } }"
    ));
}

#[test]
fn the_benchmark_deep_query() {
    // Fetches of one subgraph at one path join when one waits for nothing the other does not:
    // inventory's inStock rides along with shippingEstimate, which waits for price and weight.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench");
    let sdl = std::fs::read_to_string(format!("{root}/federation/supergraph.graphql")).unwrap();
    let query = std::fs::read_to_string(format!("{root}/load/query.graphql")).unwrap();
    let gateway = Gateway::new(Supergraph::parse(&sdl).unwrap(), Settings::default()).unwrap();
    insta::assert_snapshot!(gateway.explain(&query, None).unwrap());
}

#[test]
fn progressive_override_follows_its_label() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/progressive-override/supergraph.graphql"
    );
    let sdl = std::fs::read_to_string(path).unwrap();
    let query = "{ user(id: \"1\") { name email } }";
    // The label is off: email stays with the subgraph it is moving from.
    let off = Gateway::new(Supergraph::parse(&sdl).unwrap(), Settings::default()).unwrap();
    insta::assert_snapshot!("label_off", off.explain(query, None).unwrap());
    let settings = Settings {
        override_labels: vec!["percent(20)".to_owned()],
        ..Settings::default()
    };
    let on = Gateway::new(Supergraph::parse(&sdl).unwrap(), settings).unwrap();
    insta::assert_snapshot!("label_on", on.explain(query, None).unwrap());
}

#[test]
fn shared_union_fields_select_common_members() {
    // `Panel.items` can be answered by both subgraphs (the shelf is an entity of both), so
    // only the member both know is selected: `Lamp.watts` is not asked for (it comes back
    // null), wherever the shelf was fetched.
    insta::assert_snapshot!(plan(
        "shared-unions",
        "{ shelf { panel { items { __typename ... on Plain { label } ... on Lamp { watts } ... on Clock { hours } } } } }"
    ));
}

#[test]
fn shared_union_fields_only_one_subgraph_reaches_keep_every_member() {
    // `Board.items` is shareable too, but only the shelf subgraph can reach a board (its root
    // field; boards are no entity): all of that subgraph's members are selected.
    insta::assert_snapshot!(plan(
        "shared-unions",
        "{ board { items { __typename ... on Plain { label } ... on Lamp { watts } } } }"
    ));
}

#[test]
fn client_aliases_never_take_a_key_or_a_requirement() {
    // The client's `sku` is another field: the key travels under a key of its own.
    insta::assert_snapshot!(
        "alias_over_key",
        plan("keys", "{ items { sku: title quantity } }")
    );
    // Inside a nested key too.
    insta::assert_snapshot!(
        "alias_inside_key",
        plan("keys", "{ items { sku { code: region } quantity } }")
    );
    // A requirement under the client's alias, and a client key that looks like ours.
    insta::assert_snapshot!(
        "alias_over_requirement",
        plan(
            "requires",
            "{ products { weight: upc _pg__weight: upc shippingCost } }"
        )
    );
}
