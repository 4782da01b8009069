//! What the load benchmarks share (each example includes this file): knobs from the
//! environment, tokens, the `stratix` binary beside the example, a throwaway database, and
//! `stratix serve` as a separate process.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use sea_orm::ConnectionTrait as _;

#[path = "../tests/it/common/postgres.rs"]
pub mod postgres;

/// The secret the benchmarks' tokens are signed with, and the server checks them with.
pub const SECRET: &str = "bench-secret-bench-secret-bench-secret-bench";

/// A throwaway encryption key: a benchmark stores no secret it reads back, but PostgreSQL
/// needs one to serve.
const ENCRYPTION_KEY: &str = "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";

/// The knob `name` from the environment, or `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A token of `role` for `sub`, valid for two hours.
pub fn token(role: &str, sub: &str) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    let claims = api::auth::jwt::Claims {
        sub: sub.to_owned(),
        role: role.to_owned(),
        aud: api::auth::jwt::AUDIENCE.to_owned(),
        exp: (now + chrono::Duration::hours(2)).timestamp(),
        iat: Some(now.timestamp()),
        nbf: None,
    };
    Ok(api::auth::jwt::mint(SECRET.as_bytes(), &claims)?)
}

/// The `stratix` binary built beside example `example`.
pub fn stratix_binary(example: &str) -> anyhow::Result<PathBuf> {
    let binary: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("stratix"))
        .context("locating the stratix binary")?;
    ensure!(
        binary.is_file(),
        "{} not found: cargo build --release --bin stratix --example {example}",
        binary.display()
    );
    Ok(binary)
}

/// Runs `bench` on a database made for it and removed at the end: with `DATABASE_URL`
/// `sqlite://<a file that does not exist yet>`, that file; else a new database
/// `stratix_<name>_bench_<pid>` on the PostgreSQL server `DATABASE_URL` names, or without
/// it on a throwaway cluster of the machine's server binaries.
pub async fn on_throwaway_database<F, Fut>(name: &str, bench: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let given = std::env::var("DATABASE_URL").unwrap_or_default();
    if let Some(file) = given.strip_prefix("sqlite://") {
        let path = PathBuf::from(file.split('?').next().unwrap_or(file));
        ensure!(!path.exists(), "{} exists: name a new file", path.display());
        let result = bench(given.clone()).await;
        // The database, its WAL files, and the development key a server may have made.
        for suffix in ["", "-wal", "-shm", ".key"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        return result;
    }
    let admin_url = if given.is_empty() {
        postgres::server()
            .map_err(anyhow::Error::msg)?
            .admin_url
            .clone()
    } else {
        given
    };
    let database = format!("stratix_{name}_bench_{}", std::process::id());
    let admin = api::db::connect(&admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {database}"))
        .await?;
    let url = postgres::Server { admin_url }.url_for(&database);
    let result = bench(url).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await?;
    result
}

/// Starts `stratix serve` on `url` with the benchmark's settings `env` (besides the
/// database, the token secret, a throwaway encryption key, a free local port, and
/// `SERVER_LOG` as its `RUST_LOG`, `warn` by default); returns the process, killed when
/// dropped, and the address it listens on, once it accepts connections.
pub async fn serve(
    binary: &Path,
    url: &str,
    env: &[(&str, String)],
) -> anyhow::Result<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".to_owned());
    let server = tokio::process::Command::new(binary)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", SECRET)
        .env("STRATIX_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("STRATIX_LISTEN", &addr)
        .env("RUST_LOG", log)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        ensure!(Instant::now() < deadline, "stratix serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((server, addr))
}
