//! Real `polygraph` processes for a test: started with their log in a file, stopped when
//! dropped, waited for until they serve.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `polygraph` with `args` and `env`, its log (stderr) written to `log`.
pub fn spawn(args: &[&str], env: &[(&str, String)], log: &Path) -> Running {
    let mut command = Command::new(super::polygraph_binary());
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    Running(command.spawn().unwrap())
}

/// Waits until `base` answers `/health`; fails with the process's log if it exits first.
pub async fn wait_healthy(base: &str, process: &mut Running, log: &Path) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while reqwest::get(format!("{base}/health")).await.is_err() {
        if let Ok(Some(status)) = process.0.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{base} exited with {status} before it served:\n{log}");
        }
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `polygraph subgraph NAME --config CONFIG` on a free port with `env`, its log in `log`,
/// once it serves: the process and its base URL.
pub async fn subgraph(
    name: &str,
    config: &Path,
    env: &[(&str, String)],
    log: &Path,
) -> (Running, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let args = [
        "subgraph",
        name,
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &listen,
    ];
    let mut process = spawn(&args, env, log);
    let base = format!("http://{listen}");
    wait_healthy(&base, &mut process, log).await;
    (process, base)
}
