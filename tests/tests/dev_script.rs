//! `scripts/dev` starts a server idempotently, stops it by its PID, and fails loudly, naming
//! the server and its log, when a server cannot start. Uses Redis: it starts in milliseconds.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use common::repo_root;

fn dev(home: &std::path::Path, port: u32, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("scripts/dev"))
        .args(args)
        .env("POLYGRAPH_HOME", home)
        .env("POLYGRAPH_REDIS_PORT", port.to_string())
        .env("POLYGRAPH_START_TIMEOUT", "20")
        .output()
        .expect("bash runs scripts/dev")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether the process runs: exists and is not a zombie (an exited process nobody reaped; in a
/// container whose init does not reap, a stopped server stays one).
fn alive(pid: &str) -> bool {
    let output = Command::new("ps")
        .args(["-o", "stat=", "-p", pid])
        .output()
        .unwrap();
    output.status.success()
        && !String::from_utf8_lossy(&output.stdout)
            .trim_start()
            .starts_with('Z')
}

#[test]
fn up_twice_is_harmless_and_down_stops_the_process() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();

    let first = dev(home.path(), u32::from(port), &["up", "redis"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("started"), "{}", text(&first));
    assert!(
        text(&first).contains(&format!("redis://127.0.0.1:{port}")),
        "{}",
        text(&first)
    );
    let pid = std::fs::read_to_string(home.path().join("redis/server.pid")).unwrap();
    let pid = pid.trim().to_owned();
    assert!(alive(&pid));

    let second = dev(home.path(), u32::from(port), &["up", "redis"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("already running"),
        "{}",
        text(&second)
    );
    let pid_again = std::fs::read_to_string(home.path().join("redis/server.pid")).unwrap();
    assert_eq!(
        pid_again.trim(),
        pid,
        "a second `up` must not start another server"
    );

    let status = dev(home.path(), u32::from(port), &["status", "redis"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("Redis 7"), "{}", text(&status));

    let down = dev(home.path(), u32::from(port), &["down", "redis"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!alive(&pid), "redis (pid {pid}) still runs after `down`");
    let status = dev(home.path(), u32::from(port), &["status", "redis"]);
    assert!(!status.status.success());
    assert!(text(&status).contains("not running"), "{}", text(&status));
}

#[test]
fn a_server_that_cannot_start_fails_naming_it_and_its_log() {
    let home = tempfile::tempdir().unwrap();
    // Hold the port so the server cannot bind it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    let output = dev(home.path(), u32::from(port), &["up", "redis"]);
    let log = home.path().join("redis/server.log");
    assert!(!output.status.success(), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("error: redis"), "{message}");
    assert!(message.contains(&log.display().to_string()), "{message}");
    dev(home.path(), u32::from(port), &["down", "redis"]);
    drop(listener);
}

#[test]
fn a_server_that_exits_while_starting_fails_naming_it_and_its_log() {
    let home = tempfile::tempdir().unwrap();
    // Redis refuses a port out of range and exits at once.
    let output = dev(home.path(), 70_000, &["up", "redis"]);
    let log = home.path().join("redis/server.log");
    assert!(!output.status.success(), "{}", text(&output));
    let message = text(&output);
    assert!(
        message.contains("error: redis exited while starting"),
        "{message}"
    );
    assert!(message.contains(&log.display().to_string()), "{message}");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("port"),
        "the log says why"
    );
}

#[test]
fn unknown_servers_are_rejected() {
    let home = tempfile::tempdir().unwrap();
    let output = dev(home.path(), u32::from(free_port()), &["up", "cassandra"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("unknown server 'cassandra'"),
        "{}",
        text(&output)
    );
}
