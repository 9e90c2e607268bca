//! What the end-to-end tests share: the real binary started on a random port, the CLI run with
//! standard input, a PostgreSQL client for the tests' own tables.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lockstep");

/// A running `lockstep serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lockstep serve` on a random port with `extra` arguments and log level `log`, and
/// waits until it says where it listens. Its standard output keeps being drained afterwards.
pub fn serve_with(data: &Path, extra: &[&str], log: &str, stderr: Stdio) -> Server {
    serve_with_env(data, extra, log, stderr, &[])
}

/// [`serve_with`], with these environment variables set for the hub.
pub fn serve_with_env(
    data: &Path,
    extra: &[&str],
    log: &str,
    stderr: Stdio,
    env: &[(&str, &Path)],
) -> Server {
    // A free port of the system's choosing, unless the caller names one.
    let listen: &[&str] = if extra.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(listen)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("LOCKSTEP_LOG", log)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // After start-up nobody listens; keep reading so the hub never blocks on a pipe.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!("the server did not say where it listens; it printed {lines:#?}")
            });
        if let Some(addr) = line.strip_prefix("Lockstep is listening on ") {
            return Server {
                child,
                addr: addr.trim().to_owned(),
                stdout: lines,
            };
        }
        lines.push(line);
    }
}

/// Runs the CLI with `stdin` piped in; returns (success, stdout, stderr).
pub fn cli(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("LOCKSTEP_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PostgreSQL client for the tests' own tables.
pub async fn pg_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}
