//! The relationships subgraph against the real Bolt 5 server: batched `UNWIND $keys` Cypher,
//! answers checked against the graph read directly, and Cypher-shaped input that stays data.

mod common;

use std::collections::HashMap;

use async_graphql::Variables;
use common::{SERVERS_HINT, endpoints, expected_spec, repo_root};
use neo4j::{ValueReceive, ValueSend};
use polygraph_subgraph_neo4j::{Config, Subgraph};
use serde_json::{Value, json};

async fn demo() -> Subgraph {
    let config = Config::from_file(&repo_root().join("config/neo4j.yaml")).unwrap();
    Subgraph::start(&config)
        .await
        .unwrap_or_else(|error| panic!("starting the Neo4j subgraph: {error:#}; {SERVERS_HINT}"))
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

/// Who each user follows, read straight from the graph.
async fn follows_directly() -> HashMap<i64, Vec<i64>> {
    let driver = polygraph_demo::load::neo4j_driver(&endpoints()).unwrap();
    tokio::task::spawn_blocking(move || {
        let records = driver
            .execute_query("MATCH (a:User)-[:FOLLOWS]->(b:User) RETURN a.id AS a, b.id AS b")
            .with_parameters(&HashMap::<String, ValueSend>::new())
            .run()
            .unwrap()
            .records;
        let mut follows: HashMap<i64, Vec<i64>> = HashMap::new();
        for record in records {
            if let (Some(ValueReceive::Integer(a)), Some(ValueReceive::Integer(b))) =
                (record.value("a"), record.value("b"))
            {
                follows.entry(*a).or_default().push(*b);
            }
        }
        follows
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_thousand_users_are_one_statement_per_relationship() {
    let subgraph = demo().await;
    let representations: Vec<Value> = (1..=1000)
        .map(|id| json!({ "__typename": "User", "id": id.to_string() }))
        .collect();
    let before = subgraph.statements();
    let data = data(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id follows { id } } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(subgraph.statements() - before, 1);
    let direct = follows_directly().await;
    let entities = data["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1000);
    for entity in entities {
        let id: i64 = entity["id"].as_str().unwrap().parse().unwrap();
        let mut ours: Vec<i64> = entity["follows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().parse().unwrap())
            .collect();
        let mut theirs = direct.get(&id).cloned().unwrap_or_default();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "user {id}");
    }
    assert!(expected_spec().users() < 1000 && entities[999]["follows"] == json!([]));
}

#[tokio::test]
async fn recommendations_and_co_purchases_are_ranked_and_limited() {
    let subgraph = demo().await;
    let users: Vec<Value> = (1..=50)
        .map(|id| json!({ "__typename": "User", "id": id.to_string() }))
        .collect();
    let products: Vec<Value> = (1..=20)
        .map(|id| json!({ "__typename": "Product", "id": id.to_string() }))
        .collect();
    let before = subgraph.statements();
    let data = data(
        &subgraph,
        "query($u: [_Any!]!, $p: [_Any!]!) {
           users: _entities(representations: $u) { ... on User { id recommendedProducts(limit: 5) { id } followers { id } } }
           products: _entities(representations: $p) { ... on Product { id boughtTogether(limit: 3) { id } } }
         }",
        json!({ "u": users, "p": products }),
    )
    .await;
    // One statement per relationship field, however many entities.
    assert_eq!(subgraph.statements() - before, 3);
    let mut recommended = 0;
    for user in data["users"].as_array().unwrap() {
        let list = user["recommendedProducts"].as_array().unwrap();
        assert!(list.len() <= 5);
        recommended += list.len();
    }
    assert!(recommended > 0, "no recommendations at all: {data}");
    for product in data["products"].as_array().unwrap() {
        let together = product["boughtTogether"].as_array().unwrap();
        assert!(together.len() <= 3);
        assert!(together.iter().all(|p| p["id"] != product["id"]));
    }
    let too_many = run(&subgraph, "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { follows(limit: 100000) { id } } } }", json!({ "r": [{ "__typename": "User", "id": "1" }] })).await;
    assert_eq!(
        too_many["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{too_many}"
    );
}

#[tokio::test]
async fn cypher_shaped_ids_are_data() {
    let subgraph = demo().await;
    for id in [
        "1 OR 1=1",
        "1}) MATCH (x) DETACH DELETE x //",
        "' OR true RETURN 1 //",
        "$keys",
    ] {
        let data = data(
            &subgraph,
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id follows { id } } } }",
            json!({ "r": [{ "__typename": "User", "id": id }] }),
        )
        .await;
        assert_eq!(data["_entities"][0]["follows"], json!([]), "{id:?}");
    }
    // The graph is intact.
    assert!(!follows_directly().await.is_empty());
}

/// `User: { rule: id = claims.sub }`, over HTTP with the tests' gateway key: a caller follows
/// only their own relationships, read ahead through `_entities` or field by field below it.
#[tokio::test]
async fn row_rules_keep_each_caller_to_their_own_relationships() {
    let follows = follows_directly().await;
    let mut followers: Vec<(&i64, &Vec<i64>)> = follows.iter().collect();
    followers.sort();
    let (own, other) = (followers[0], followers[1]);
    let mut config = Config::from_file(&repo_root().join("config/neo4j.yaml")).unwrap();
    config.entities["User"].rule = Some("id = claims.sub".into());
    let subgraph = Subgraph::start(&config).await.unwrap();
    let server =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("neo4j")).await;
    let token = common::gateway_token("neo4j", &json!({ "sub": own.0.to_string() }));
    let query = json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id follows(limit: 100) { id follows { id } } } ... on Product { boughtTogether(limit: 1) { id } } } }",
        "variables": { "r": [
            { "__typename": "User", "id": own.0.to_string() },
            { "__typename": "User", "id": other.0.to_string() },
            { "__typename": "Product", "id": "1" },
        ] },
    });
    let (status, cache, body) = server.exchange(&query, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let found = &body["data"]["_entities"];
    let mut ids: Vec<i64> = found[0]["follows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["id"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = own.1.clone();
    expected.sort_unstable();
    assert_eq!(ids, expected, "{body}");
    // Below them, field by field: the people followed are not the caller either.
    for followed in found[0]["follows"].as_array().unwrap() {
        if followed["id"] != json!(own.0.to_string()) {
            assert_eq!(followed["follows"], json!([]), "{body}");
        }
    }
    assert_eq!(found[1]["follows"], json!([]), "another user's: {body}");
    assert!(found[2]["boughtTogether"].is_array(), "{body}");
    assert!(
        cache
            .as_deref()
            .is_some_and(|cache| cache.contains("private")),
        "{cache:?}"
    );
    let (_, _, body) = server.exchange(&query, None).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
}

/// The corpus in `tests/corpus/neo4j/`, over HTTP: every answer, first sight and repeat,
/// equals its golden answer, in the same statements.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = demo().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "neo4j", subgraph.recorder()).await;
}

/// A traversal that explodes (every follows-path up to 14 hops) ends at the configured
/// statement timeout with a `TIMEOUT` error at its path, while the subgraph goes on answering
/// other requests in the meantime.
#[tokio::test]
async fn a_slow_traversal_times_out_while_other_requests_are_answered() {
    let mut config = Config::from_file(&repo_root().join("config/neo4j.yaml")).unwrap();
    config.statement_timeout_ms = 1_500;
    config.threads = 2;
    let mut reach = config.relationships[0].clone();
    reach.field = "reach".into();
    reach.pattern = "(n)-[:FOLLOWS*1..14]->(m:User)".into();
    config.relationships.push(reach);
    let subgraph = Subgraph::start(&config).await.unwrap();
    let server = std::sync::Arc::new(common::HttpSubgraph::start(subgraph.served()).await);
    let slow = json!({ "query": "{ _entities(representations: [{ __typename: \"User\", id: \"1\" }]) { ... on User { reach { id } } } }" });
    let started = std::time::Instant::now();
    let slow = tokio::spawn({
        let server = server.clone();
        async move { server.post(&slow).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let fast = json!({ "query": "query($id: ID!) { _entities(representations: [{ __typename: \"User\", id: $id }]) { ... on User { follows { id } } } }" });
    for id in 1..=5 {
        let mut request = fast.clone();
        request["variables"] = json!({ "id": id.to_string() });
        let answer = server.post(&request).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        assert!(
            answer["data"]["_entities"][0]["follows"].is_array(),
            "{answer}"
        );
    }
    assert!(
        !slow.is_finished(),
        "the fast requests were answered while the slow one ran"
    );
    let answer = slow.await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "TIMEOUT",
        "{answer}"
    );
    assert!(answer["errors"][0]["path"].is_array(), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1_500));
    // And the subgraph still answers afterwards.
    let mut request = fast.clone();
    request["variables"] = json!({ "id": "1" });
    assert!(server.post(&request).await.get("errors").is_none());
}

/// Relationships nested level under level multiply: past `max_objects` entities in one
/// answer, the request is refused as input rather than built at any size.
#[tokio::test]
async fn answers_past_the_object_budget_are_refused() {
    let mut config = Config::from_file(&repo_root().join("config/neo4j.yaml")).unwrap();
    config.max_objects = 20;
    let subgraph = Subgraph::start(&config).await.unwrap();
    let query = "{ _entities(representations: [{ __typename: \"User\", id: \"1\" }]) { ... on User { follows { follows { follows { id } } } } } }";
    let answer = run(&subgraph, query, json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("more than 20"),
        "{answer}"
    );
    let small = "{ _entities(representations: [{ __typename: \"User\", id: \"1\" }]) { ... on User { follows(limit: 1) { id } } } }";
    let answer = run(&subgraph, small, json!({})).await;
    assert_eq!(
        answer["data"]["_entities"][0]["follows"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{answer}"
    );
}
