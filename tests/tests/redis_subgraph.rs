//! The feature store against the real Redis: the demo's feature hashes as typed entity fields,
//! batched reads, the serving matrix, atomic writes with TTLs, and ids that look like patterns.

mod common;

use async_graphql::Variables;
use common::{SERVERS_HINT, endpoints, expected_spec, repo_root};
use polygraph_subgraph_redis::{Config, Subgraph};
use serde_json::{Value, json};

async fn demo() -> Subgraph {
    let config = Config::from_file(&repo_root().join("config/redis.yaml")).unwrap();
    Subgraph::start(&config)
        .await
        .unwrap_or_else(|error| panic!("starting the Redis subgraph: {error:#}; {SERVERS_HINT}"))
}

async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    subgraph
        .served()
        .execute(query, None, &Variables::from_json(variables), None)
        .await
        .json()
}

async fn data(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    let response = run(subgraph, query, variables).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"].clone()
}

#[tokio::test]
async fn a_thousand_entities_read_their_features_in_one_round_trip() {
    let subgraph = demo().await;
    let users = expected_spec().users();
    // Every demo user, then more ids than exist: 1,000 representations in all.
    let representations: Vec<Value> = (1..=1000)
        .map(|id| json!({ "__typename": "User", "id": id.to_string() }))
        .collect();
    let before = subgraph.round_trips();
    let data = data(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id onlineFeatures { click_rate_7d orders_30d segment is_premium embedding } features(names: [\"segment\"]) { name group value } } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(subgraph.round_trips() - before, 1);
    let entities = data["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1000);
    for (index, entity) in entities.iter().enumerate() {
        let features = &entity["onlineFeatures"];
        if (index as u64) < users {
            assert!(features["click_rate_7d"].is_f64(), "{entity}");
            assert!(features["orders_30d"].is_i64(), "{entity}");
            assert!(features["is_premium"].is_boolean(), "{entity}");
            assert!(!features["embedding"].as_array().unwrap().is_empty());
            assert_eq!(entity["features"][0]["value"], features["segment"]);
            assert_eq!(entity["features"][0]["group"], "user_online");
        } else {
            assert!(features.is_null(), "{entity}");
            assert!(entity["features"][0]["value"].is_null());
        }
    }
}

#[tokio::test]
async fn feature_vectors_are_one_matrix_with_missing_values_listed() {
    let subgraph = demo().await;
    let before = subgraph.round_trips();
    let data = data(
        &subgraph,
        "{ featureVector(entity: Product, ids: [\"1\", \"2\", \"999999\"], names: [\"ctr_7d\", \"popularity\", \"embedding\"]) { ids names values missing { id name } } }",
        json!({}),
    )
    .await;
    assert_eq!(subgraph.round_trips() - before, 1);
    let vector = &data["featureVector"];
    assert_eq!(
        vector["names"],
        json!(["ctr_7d", "popularity", "embedding"])
    );
    let values = vector["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    assert!(values[0][0].is_f64() && values[1][1].is_f64() && values[0][2].is_array());
    assert_eq!(values[2], json!([null, null, null]));
    assert_eq!(vector["missing"].as_array().unwrap().len(), 3);
    assert!(
        vector["missing"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"] == "999999")
    );

    let unknown = run(
        &subgraph,
        "{ featureVector(entity: User, ids: [\"1\"], names: [\"ctr_7d\"]) { values } }",
        json!({}),
    )
    .await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{unknown}"
    );
}

#[tokio::test]
async fn writes_are_typed_atomic_and_expire() {
    let subgraph = demo().await;
    let id = format!("test-{}", std::process::id());
    let written = data(
        &subgraph,
        "mutation($id: ID!) { putFeatures(entity: Product, id: $id, values: [{name: \"ctr_7d\", value: 0.5}, {name: \"views_24h\", value: 12}, {name: \"embedding\", value: [0.1, 0.2]}]) { written expiresInSeconds } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        written["putFeatures"],
        json!({ "written": 3, "expiresInSeconds": 604_800 })
    );
    let read = data(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { onlineFeatures { ctr_7d views_24h embedding popularity } } } }",
        json!({ "r": [{ "__typename": "Product", "id": id }] }),
    )
    .await;
    assert_eq!(
        read["_entities"][0]["onlineFeatures"],
        json!({ "ctr_7d": 0.5, "views_24h": 12, "embedding": [0.1, 0.2], "popularity": null })
    );
    let client = redis::Client::open(endpoints().redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("features:product:{id}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 600_000 && ttl <= 604_800, "{ttl}");

    // A bad value anywhere writes nothing.
    let rejected = run(
        &subgraph,
        "mutation($id: ID!) { putFeatures(entity: Product, id: $id, values: [{name: \"ctr_7d\", value: 0.9}, {name: \"views_24h\", value: \"many\"}]) { written } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        rejected["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{rejected}"
    );
    let ctr: String = redis::cmd("HGET")
        .arg(&key)
        .arg("ctr_7d")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(ctr, "0.5");
    let () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn pattern_shaped_ids_are_literal_keys() {
    let subgraph = demo().await;
    let client = redis::Client::open(endpoints().redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys_before: usize = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .unwrap();
    for id in ["*", "1*", "?", "[1-9]", "{id}", "1 2", "1\r\nFLUSHALL"] {
        let data = data(
            &subgraph,
            "query($ids: [ID!]!) { featureVector(entity: User, ids: $ids, names: [\"segment\"]) { values } }",
            json!({ "ids": [id] }),
        )
        .await;
        assert_eq!(
            data["featureVector"]["values"],
            json!([[null]]),
            "{id:?} matched something"
        );
    }
    let keys_after: usize = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys_before, keys_after);
}

/// The corpus in `tests/corpus/redis/`, over HTTP: every answer, first sight and repeat, equals
/// its golden answer, in the same commands.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = demo().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "redis", subgraph.recorder()).await;
}

/// `user_online: { rule: id = claims.sub }`, over HTTP with the tests' gateway key: a caller
/// reads and writes only their own features, through `_entities` (both paths), the feature
/// vector and `putFeatures`.
#[tokio::test]
async fn row_rules_keep_each_caller_to_their_own_features() {
    let mut config = Config::from_file(&repo_root().join("config/redis.yaml")).unwrap();
    config.groups["user_online"].rule = Some("id = claims.sub".into());
    let subgraph = Subgraph::start(&config).await.unwrap();
    let server =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("redis")).await;
    let (own, other) = (
        format!("rule-{}-a", std::process::id()),
        format!("rule-{}-b", std::process::id()),
    );
    let client = redis::Client::open(endpoints().redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let other_key = format!("features:user:{other}");
    let () = redis::cmd("HSET")
        .arg(&other_key)
        .arg("segment")
        .arg("theirs")
        .query_async(&mut connection)
        .await
        .unwrap();
    let token = common::gateway_token("redis", &json!({ "sub": own }));
    let ask = |query: &str, variables: Value| json!({ "query": query, "variables": variables });

    let put = "mutation($id: ID!) { putFeatures(entity: User, id: $id, values: [{name: \"segment\", value: \"mine\"}]) { written } }";
    let (_, _, body) = server
        .exchange(&ask(put, json!({ "id": own })), Some(&token))
        .await;
    assert_eq!(body["data"]["putFeatures"]["written"], 1, "{body}");
    let (_, _, body) = server
        .exchange(&ask(put, json!({ "id": other })), Some(&token))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let segment: String = redis::cmd("HGET")
        .arg(&other_key)
        .arg("segment")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(segment, "theirs", "nothing was written");

    let entities = ask(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id onlineFeatures { segment } features(names: [\"segment\"]) { value } } } }",
        json!({ "r": [{ "__typename": "User", "id": own }, { "__typename": "User", "id": other }] }),
    );
    for _ in 0..2 {
        let (_, _, body) = server.exchange(&entities, Some(&token)).await;
        let found = &body["data"]["_entities"];
        assert_eq!(found[0]["onlineFeatures"]["segment"], "mine", "{body}");
        assert_eq!(found[1]["onlineFeatures"], Value::Null, "{body}");
        assert_eq!(found[1]["features"][0]["value"], Value::Null, "{body}");
    }

    let vector = ask(
        "query($ids: [ID!]!) { featureVector(entity: User, ids: $ids, names: [\"segment\"]) { values missing { id name } } }",
        json!({ "ids": [own, other] }),
    );
    let (_, _, body) = server.exchange(&vector, Some(&token)).await;
    let result = &body["data"]["featureVector"];
    assert_eq!(result["values"], json!([["mine"], [null]]), "{body}");
    assert_eq!(
        result["missing"],
        json!([{ "id": other, "name": "segment" }])
    );

    // Without claims the ruled group is refused; unruled groups are not.
    let (_, _, body) = server.exchange(&entities, None).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    let products = ask(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { onlineFeatures { ctr_7d } } } }",
        json!({ "r": [{ "__typename": "Product", "id": "1" }] }),
    );
    let (_, _, body) = server.exchange(&products, None).await;
    assert!(body.get("errors").is_none(), "{body}");
    let () = redis::cmd("DEL")
        .arg(&other_key)
        .arg(format!("features:user:{own}"))
        .query_async(&mut connection)
        .await
        .unwrap();
}
