//! A real `stratix` process over a test database: for what only a process shows (signals,
//! exit codes, what it logs), and the commands (`backup`, `restore`, `check`).

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

use super::TestDb;
use super::app::{ENCRYPTION_KEY, SECRET};

/// The `stratix` binary with the environment of `t`'s database (and nothing inherited
/// that would change what it does).
pub fn stratix(t: &TestDb) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratix"));
    for name in [
        "DATABASE_URL",
        "DATABASE_POOL_SIZE",
        "STRATIX_LISTEN",
        "PORT",
        "STRATIX_METRICS_LISTEN",
        "STRATIX_LOG_FORMAT",
        "RUST_LOG",
        "JWT_JWKS",
        "STRATIX_JOBS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "STRATIX_ENCRYPTION_KEY",
        "STRATIX_ENCRYPTION_KEYS_OLD",
    ] {
        command.env_remove(name);
    }
    command
        .env("DATABASE_URL", &t.url)
        .env("JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .env("STRATIX_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .kill_on_drop(true);
    command
}

/// A running `stratix serve`.
pub struct Process {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `stratix serve` on a free port with `env` set, and waits until `/ready`.
    pub async fn serve(t: &TestDb, env: &[(&str, &str)]) -> Self {
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let mut command = stratix(t);
        command
            .arg("serve")
            .env("STRATIX_LISTEN", addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // An empty value removes the variable (e.g. `JWT_SECRET` for development mode).
        for (name, value) in super::UNREACHED_LIMITS.iter().chain(env) {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let mut child = command.spawn().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let process = Self { addr, child, lines };
        process.ready().await;
        process
    }

    /// Waits (at most 30 s) until `/ready` answers 200.
    async fn ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("http://{}/ready", self.addr);
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stratix serve not ready; it said:\n{}",
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it has written to stderr so far, line by line.
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Sends it SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most `wait`) for it to exit; its exit code.
    pub async fn exit_code(&mut self, wait: Duration) -> Option<i32> {
        tokio::time::timeout(wait, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("stratix did not exit within {wait:?}"))
            .unwrap()
            .code()
    }
}
