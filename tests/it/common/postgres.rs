//! A throwaway PostgreSQL cluster for the test run, or the server `TEST_DATABASE_URL` names.
//!
//! The cluster is started once per test process from the machine's server binaries (as the
//! `postgres` user when the tests run as root, since PostgreSQL refuses root). A watchdog
//! shell stops it and deletes its directory as soon as the test process exits, however it
//! exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where to reach the server as a user allowed to create databases.
pub struct Server {
    /// A URL of the form `postgres://user@host:port/database`.
    pub admin_url: String,
}

impl Server {
    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        match self.admin_url.rfind('/') {
            Some(slash) => {
                let (base, rest) = self.admin_url.split_at(slash);
                let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
                format!("{base}/{name}{query}")
            }
            None => format!("{}/{name}", self.admin_url),
        }
    }
}

/// The server for this test run, started on first use; `Err` says why there is none.
pub fn server() -> Result<&'static Server, &'static str> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Server { admin_url: url }),
            _ => start_cluster(),
        })
        .as_ref()
        .map_err(String::as_str)
}

fn server_binaries() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has_server(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_server(dir))
        .collect();
    versions.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn start_cluster() -> Result<Server, String> {
    let bin = server_binaries().ok_or_else(|| {
        "no TEST_DATABASE_URL and no PostgreSQL server binaries (PG_BIN, /usr/lib/postgresql/*/bin)"
            .to_owned()
    })?;
    let dir = std::env::temp_dir().join(format!("stratix-test-pg-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let as_postgres = if running_as_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot hand the cluster directory to the postgres user".to_owned());
        }
        "runuser -u postgres --"
    } else {
        ""
    };
    let initdb = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{as_postgres} '{}' -D '{}' -A trust -U postgres -E UTF8 --locale=C --no-sync",
            bin.join("initdb").display(),
            data.display()
        ))
        .output()
        .map_err(|e| e.to_string())?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = free_port()?;
    let script = format!(
        "{as_postgres} '{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
           -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
           > '{dir}/server.log' 2>&1 &\n\
         while kill -0 {pid} 2>/dev/null; do sleep 0.5; done\n\
         {as_postgres} '{pg_ctl}' -D '{data}' stop -m immediate > /dev/null 2>&1\n\
         rm -rf '{dir}'\n",
        postgres = bin.join("postgres").display(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
        pid = std::process::id(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            return Ok(Server {
                admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    Err(format!("postgres did not start within 30 s: {log}"))
}
