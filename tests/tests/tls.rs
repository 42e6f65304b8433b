//! Managed databases speak TLS only. Here a certificate authority made by the test signs the
//! server certificates of a PostgreSQL and a Redis started by the test with TLS on and plain
//! connections refused; the real PostgreSQL and Redis subgraph binaries reach them through
//! `sslmode=verify-full` and `rediss://` with that CA, and answer queries from their data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::processes::{Running, free_port, subgraph};
use serde_json::{Value, json};

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
struct Authority {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

fn authority(dir: &Path) -> Authority {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Polygraph test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_certificate = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_certificate = server.signed_by(&server_key, &issuer).unwrap();
    let authority = Authority {
        ca: dir.join("ca.pem"),
        certificate: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    std::fs::write(&authority.ca, ca_certificate.pem()).unwrap();
    std::fs::write(&authority.certificate, server_certificate.pem()).unwrap();
    std::fs::write(&authority.key, server_key.serialize_pem()).unwrap();
    authority
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}

/// `program` as the `postgres` user when this runs as root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn pg_bindir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/dev up installs it)")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().expect("an initdb under /usr/lib/postgresql")
}

/// A PostgreSQL cluster of the test's own that accepts TLS connections only; stopped on drop.
struct TlsPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn tls_postgres(dir: &Path, authority: &Authority) -> TlsPostgres {
    let bin = pg_bindir();
    let home = dir.join("postgres");
    std::fs::create_dir_all(&home).unwrap();
    let data = home.join("data");
    let chown = |path: &Path| {
        if is_root() {
            let done = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(path)
                .status()
                .unwrap();
            assert!(done.success());
        }
    };
    chown(&home);
    let initialized = as_postgres(&bin.join("initdb"))
        .args([
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "-A",
            "trust",
        ])
        .args(["-E", "UTF8", "--locale=C.UTF-8"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(initialized.success(), "initdb failed");
    std::fs::copy(&authority.certificate, data.join("server.crt")).unwrap();
    std::fs::copy(&authority.key, data.join("server.key")).unwrap();
    std::fs::set_permissions(
        data.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let port = free_port();
    let settings = format!(
        "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
        home.display()
    );
    let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    conf.push_str(&settings);
    std::fs::write(data.join("postgresql.conf"), conf).unwrap();
    // TLS or nothing: a plain connection over TCP is rejected.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    chown(&home);
    let started = as_postgres(&bin.join("pg_ctl"))
        .args(["-D", data.to_str().unwrap(), "-w", "-t", "60"])
        .args(["-l", home.join("server.log").to_str().unwrap(), "start"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let server = TlsPostgres { bin, data, port };
    assert!(
        started.success(),
        "PostgreSQL did not start: {}",
        std::fs::read_to_string(home.join("server.log")).unwrap_or_default()
    );
    server
}

async fn graphql(base: &str, query: &str) -> Value {
    common::federation::post(&format!("{base}/graphql"), &json!({ "query": query }))
        .await
        .2
}

#[tokio::test]
async fn the_postgres_subgraph_reaches_a_tls_only_postgresql() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path());
    let server = tls_postgres(dir.path(), &authority);
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let tls = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        authority.ca.display()
    );

    let plain = sqlx::PgPool::connect(&format!("{base}?sslmode=disable")).await;
    assert!(plain.is_err(), "the server took a plain connection");
    let pool = sqlx::PgPool::connect(&tls).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted);
    sqlx::raw_sql(
        "CREATE TABLE widgets (id integer PRIMARY KEY, name text NOT NULL);
         INSERT INTO widgets VALUES (1, 'sprocket'), (2, 'flange');",
    )
    .execute(&pool)
    .await
    .unwrap();

    let config = dir.path().join("postgres.yaml");
    std::fs::write(
        &config,
        "schema: public\ntables:\n  widgets: { type: Widget, entity: true }\n",
    )
    .unwrap();
    let log = dir.path().join("subgraph.log");
    let (_subgraph, subgraph_url) = subgraph(
        "postgres",
        &config,
        &[("POLYGRAPH_POSTGRES_URL", tls.clone())],
        &log,
    )
    .await;
    let body = graphql(
        &subgraph_url,
        "{ widgets(order_by: [{id: ASC}]) { id name } }",
    )
    .await;
    assert_eq!(
        body["data"]["widgets"],
        json!([{ "id": "1", "name": "sprocket" }, { "id": "2", "name": "flange" }]),
        "{body}"
    );
    let ready = reqwest::get(format!("{subgraph_url}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    // The subgraph's own connections are encrypted too: every client session on TCP is.
    let plain_sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE client_addr IS NOT NULL AND NOT ssl",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(plain_sessions, 0);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains("sslrootcert"),
        "the URL reached the log: {log}"
    );
}

/// A Redis of the test's own that listens for TLS only; the process, its port, and a
/// connection to it over TLS.
async fn tls_redis(authority: &Authority) -> (Running, u16, redis::aio::MultiplexedConnection) {
    let port = free_port();
    let redis = Running(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(&authority.certificate)
            .arg("--tls-key-file")
            .arg(&authority.key)
            .arg("--tls-ca-cert-file")
            .arg(&authority.ca)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("rediss://localhost:{port}");
    let certificates = || redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(&authority.ca).unwrap()),
    };
    let client = redis::Client::build_with_tls(url.as_str(), certificates()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let connection = loop {
        match client.get_multiplexed_async_connection().await {
            Ok(connection) => break connection,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "Redis over TLS did not answer: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    (redis, port, connection)
}

#[tokio::test]
async fn the_redis_subgraph_reaches_a_tls_only_redis() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let authority = authority(dir.path());
    let (_redis, port, mut connection) = tls_redis(&authority).await;
    let url = format!("rediss://localhost:{port}");
    let () = redis::cmd("HSET")
        .arg("features:user:1")
        .arg(&["segment", "loyal", "orders_30d", "4"][..])
        .query_async(&mut connection)
        .await
        .unwrap();
    // A plain connection to the TLS port gets nowhere.
    let plain = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(3), async {
        let mut connection = plain.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    })
    .await;
    assert!(
        !matches!(answered, Ok(Ok(_))),
        "Redis answered in plain text"
    );

    let log = dir.path().join("subgraph.log");
    let (_subgraph, subgraph_url) = subgraph(
        "redis",
        &common::repo_root().join("config/redis.yaml"),
        &[
            ("POLYGRAPH_REDIS_URL", url.clone()),
            (
                "POLYGRAPH_REDIS_CA_FILE",
                authority.ca.display().to_string(),
            ),
        ],
        &log,
    )
    .await;
    let body = graphql(
        &subgraph_url,
        r#"{ _entities(representations: [{__typename: "User", id: "1"}]) { ... on User { onlineFeatures { segment orders_30d } } } }"#,
    )
    .await;
    assert_eq!(
        body["data"]["_entities"][0]["onlineFeatures"],
        json!({ "segment": "loyal", "orders_30d": 4 }),
        "{body}"
    );
    let ready = reqwest::get(format!("{subgraph_url}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
}
