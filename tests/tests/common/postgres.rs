//! A PostgreSQL server of a test's own, in a scratch folder, which it can stop and start
//! again without touching the shared one the other tests use.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct OwnPostgres {
    folder: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

/// `command` as the `postgres` user when this runs as root (the server refuses root).
fn as_server_user(program: PathBuf) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl OwnPostgres {
    /// A fresh cluster on a free loopback port, started (scripts/dev installs PostgreSQL).
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/dev installs it)")
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("a PostgreSQL with initdb");
        let folder = tempfile::tempdir().unwrap();
        let _ = Command::new("chown")
            .arg("postgres:")
            .arg(folder.path())
            .status();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut initdb = as_server_user(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(folder.path().join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"]);
        run(initdb, "initdb");
        let postgres = Self { folder, port, bin };
        postgres.restart();
        postgres
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self) -> Command {
        let mut command = as_server_user(self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.folder.path().join("data"));
        command
    }

    pub fn restart(&self) {
        let mut start = self.pg_ctl();
        start
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.folder.path().display()
            ))
            .arg("-l")
            .arg(self.folder.path().join("server.log"))
            .args(["-w", "start"]);
        run(start, "pg_ctl start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops at once, as a crash would: connections are cut, nothing is waited for.
    pub fn stop(&self) {
        let mut stop = self.pg_ctl();
        stop.args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let mut stop = self.pg_ctl();
        stop.args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}
