//! References to other subgraphs' entities in the PostgreSQL subgraph, against a scratch
//! schema of the real server: a column holding an entity's key becomes that entity, with the
//! fields the table keeps copies of `@provides`d; the SDL composes with the entity's owner.

mod common;

use common::{compose, endpoints};
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::json;

const CONFIG: &str = r"
tables:
  parcels:
    type: Parcel
    references:
      shipment: { type: Shipment, column: shipment_id, provides: { carrier: carrier } }
";

#[tokio::test]
async fn references_become_entities_with_provided_fields() {
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let schema = format!("refs_{}", std::process::id());
    for statement in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
        format!(
            "CREATE TABLE {schema}.parcels (id bigint PRIMARY KEY, shipment_id text, carrier text NOT NULL)"
        ),
        format!("INSERT INTO {schema}.parcels VALUES (1, 'S-1', 'DHL'), (2, NULL, 'UPS')"),
    ] {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    let mut config = Config::from_yaml(CONFIG).unwrap();
    config.schema.clone_from(&schema);
    let subgraph = Subgraph::with_pool(&config, pool.clone()).await.unwrap();

    let sdl = subgraph.sdl();
    assert!(
        sdl.contains("shipment: Shipment @provides(fields: \"carrier\")"),
        "{sdl}"
    );
    assert!(
        sdl.contains("type Shipment @key(fields: \"id\", resolvable: false)"),
        "{sdl}"
    );
    assert!(sdl.contains("carrier: String! @external"), "{sdl}");

    let response = common::answer(
        &subgraph.served(),
        "{ parcels(order_by: [{ id: ASC }]) { id shipment { __typename id carrier } } }",
        None,
        serde_json::Value::Null,
    )
    .await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(
        response["data"],
        json!({ "parcels": [
            { "id": "1", "shipment": { "__typename": "Shipment", "id": "S-1", "carrier": "DHL" } },
            { "id": "2", "shipment": null },
        ] })
    );

    // With the entity's owner, it composes, the provided field in the supergraph.
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("parcels.graphql");
    std::fs::write(&ours, &sdl).unwrap();
    let owner = dir.path().join("shipping.graphql");
    std::fs::write(
        &owner,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])
           type Shipment @key(fields: "id") { id: ID! carrier: String! @shareable eta: String }
           type Query { shipments: [Shipment!]! }"#,
    )
    .unwrap();
    let supergraph = compose(&[("parcels", &ours), ("shipping", &owner)]).unwrap();
    assert!(supergraph.contains("provides: \"carrier\""), "{supergraph}");

    // A column a reference names must exist.
    let mut bad = config.clone();
    bad.tables["parcels"].references["shipment"].column = "nope".into();
    let error = Subgraph::with_pool(&bad, pool.clone()).await.err().unwrap();
    assert!(format!("{error:#}").contains("nope"), "{error:#}");

    // A referenced entity cannot also be extended: its extension fields could be selected
    // under the reference, whose document has only the key and provided fields.
    let mut both = config.clone();
    both.extends = serde_yaml::from_str(
        "Shipment: { fields: { parcels: { table: parcels, column: shipment_id } } }",
    )
    .unwrap();
    let error = Subgraph::with_pool(&both, pool.clone())
        .await
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("cannot also be extended"),
        "{error:#}"
    );

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
