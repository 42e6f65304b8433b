//! A scratch PostgreSQL database per test, with the demo schema and no rows, dropped afterwards:
//! tests that write never disturb the demo data other tests read.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use super::{SERVERS_HINT, endpoints};

pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
    admin: PgPool,
}

impl ScratchDatabase {
    pub async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "polygraph_scratch_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let base: PgConnectOptions = endpoints().postgres.parse().unwrap();
        let admin = PgPool::connect_with(base.clone().database("postgres"))
            .await
            .unwrap_or_else(|error| panic!("connecting to PostgreSQL: {error}; {SERVERS_HINT}"));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let url = {
            let mut url = endpoints().postgres;
            let cut = url.rfind('/').unwrap();
            url.truncate(cut + 1);
            url.push_str(&name);
            url
        };
        let pool = PgPool::connect(&url).await.unwrap();
        polygraph_demo::load::postgres::MIGRATOR
            .run(&pool)
            .await
            .unwrap();
        pool.close().await;
        Self { name, url, admin }
    }

    pub async fn drop(self) {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}
