//! `stratix backup` and `stratix restore` (seed 000's scripts): consistent snapshots with
//! a manifest, checked before anything is restored.
//!
//! A backup is two files in the backup directory, named by the UTC time it was taken:
//! `stratix-YYYYMMDDTHHMMSSZ.sqlite` (SQLite's `VACUUM INTO`) or `.dump` (PostgreSQL's
//! `pg_dump` custom format), and beside it `<file>.manifest.json`: the Stratix version,
//! the applied migrations, the row count of every table, and the data's size and SHA-256.
//! Backups older than [`KEEP_DAYS`] days are pruned, the newest always kept.
//!
//! A restore refuses, with the target untouched, a file whose size or checksum differs
//! from its manifest (damaged, truncated), a schema newer than this binary knows, or a
//! backup of the other backend. It replaces the target as one step (SQLite: a rename;
//! PostgreSQL: one `psql` transaction), applies newer migrations, then compares the row
//! counts with the manifest and runs `stratix check`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, NaiveDateTime, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait as _, Query};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel,
    TransactionTrait as _,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::check;

/// How long backups are kept.
pub const KEEP_DAYS: i64 = 7;

/// The manifest's format version.
const FORMAT: u32 = 1;

/// What a backup holds, written beside it as `<file>.manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format.
    pub format: u32,
    /// The Stratix version that made it.
    pub stratix_version: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The migrations applied in the snapshot, oldest first.
    pub migrations: Vec<String>,
    /// The data file's name (in the manifest's directory).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Rows per table in the snapshot.
    pub row_counts: BTreeMap<String, i64>,
}

/// What a backup made.
#[derive(Debug)]
pub struct Made {
    /// The data file.
    pub file: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Older backups removed.
    pub pruned: Vec<PathBuf>,
}

/// Backs `db` (opened from `url`) up into `dir`, then prunes old backups there.
pub async fn backup(db: &DatabaseConnection, url: &str, dir: &Path) -> anyhow::Result<Made> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let created_at = Utc::now();
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let name = format!(
        "stratix-{}.{}",
        created_at.format(STAMP),
        if postgres { "dump" } else { "sqlite" }
    );
    let file = dir.join(&name);
    // Written under another name first: a file with the final name is always complete.
    let partial = dir.join(format!("{name}.partial"));
    let (migrations, row_counts) = if postgres {
        dump_postgres(db, url, &partial).await?
    } else {
        vacuum_into(db, &partial).await?;
        let copy = crate::db::connect_for_migrations(&sqlite_url(&partial)).await?;
        let contents = snapshot_contents(&copy).await;
        copy.close().await?;
        contents?
    };
    let (bytes, sha256) = digest(&partial)?;
    std::fs::rename(&partial, &file)?;
    let manifest = Manifest {
        format: FORMAT,
        stratix_version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: crate::db::backend_name(db).to_owned(),
        created_at,
        migrations,
        file: name,
        bytes,
        sha256,
        row_counts,
    };
    std::fs::write(
        manifest_path(&file),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    let pruned = prune(dir, created_at)?;
    Ok(Made {
        file,
        manifest,
        pruned,
    })
}

/// The timestamp in backup names.
const STAMP: &str = "%Y%m%dT%H%M%SZ";

fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rw", path.display())
}

/// SQLite's own consistent copy of a live database.
async fn vacuum_into(db: &DatabaseConnection, target: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(target);
    let path = target.to_str().context("the backup path is not UTF-8")?;
    // No builder has VACUUM; the path is the only value, quoted as a literal.
    db.execute_unprepared(&format!("VACUUM INTO '{}'", path.replace('\'', "''")))
        .await
        .context("VACUUM INTO")?;
    Ok(())
}

/// `pg_dump -Fc` of the snapshot a read-only transaction exports, whose migrations and
/// row counts are read in that same transaction: the manifest describes exactly the dump.
async fn dump_postgres(
    db: &DatabaseConnection,
    url: &str,
    target: &Path,
) -> anyhow::Result<(Vec<String>, BTreeMap<String, i64>)> {
    let pg_dump = postgres_tool("pg_dump")?;
    let snapshot = db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?;
    let mut export = Query::select();
    export.expr(Expr::cust("pg_export_snapshot()"));
    let id: String = snapshot
        .query_one(&export)
        .await?
        .context("pg_export_snapshot returned nothing")?
        .try_get_by_index(0)?;
    let contents = snapshot_contents(&snapshot).await?;
    let output = tokio::process::Command::new(&pg_dump)
        .arg("--format=custom")
        .arg(format!("--snapshot={id}"))
        .arg("--file")
        .arg(target)
        .arg("--dbname")
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", pg_dump.display()))?;
    snapshot.commit().await?;
    ensure!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(contents)
}

/// The applied migrations and every table's row count.
async fn snapshot_contents<C: ConnectionTrait>(
    db: &C,
) -> anyhow::Result<(Vec<String>, BTreeMap<String, i64>)> {
    let mut select = Query::select();
    select
        .column("version")
        .from("seaql_migrations")
        .order_by("version", sea_orm::Order::Asc);
    let mut migrations = Vec::new();
    for row in db.query_all(&select).await? {
        migrations.push(row.try_get_by_index::<String>(0)?);
    }
    Ok((migrations, row_counts(db).await?))
}

/// Rows per catalog table.
pub async fn row_counts<C: ConnectionTrait>(db: &C) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    for table in migration::catalog::TABLES {
        let mut select = Query::select();
        select.expr(Expr::col(Asterisk).count()).from(table.name);
        let count: i64 = db
            .query_one(&select)
            .await?
            .context("COUNT(*) returned nothing")?
            .try_get_by_index(0)?;
        counts.insert(table.name.to_owned(), count);
    }
    Ok(counts)
}

/// A file's size and SHA-256.
fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Removes the backups in `dir` older than [`KEEP_DAYS`] days before `now`, keeping the
/// newest whatever its age.
fn prune(dir: &Path, now: DateTime<Utc>) -> anyhow::Result<Vec<PathBuf>> {
    let mut backups: Vec<(DateTime<Utc>, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter_map(|path| Some((taken_at(&path)?, path)))
        .collect();
    backups.sort();
    let newest = backups.pop();
    let cutoff = now - chrono::Duration::days(KEEP_DAYS);
    let mut pruned = Vec::new();
    for (taken, file) in backups {
        if taken < cutoff && newest.is_some() {
            let _ = std::fs::remove_file(manifest_path(&file));
            std::fs::remove_file(&file)?;
            pruned.push(file);
        }
    }
    Ok(pruned)
}

/// When the backup at `path` was taken, from its name; `None` for anything else.
fn taken_at(path: &Path) -> Option<DateTime<Utc>> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_prefix("stratix-")?
        .strip_suffix(".sqlite")
        .or_else(|| name.strip_prefix("stratix-")?.strip_suffix(".dump"))?;
    NaiveDateTime::parse_from_str(stem, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

/// Reads and checks the backup `path` (its data file or its manifest) against its
/// manifest and this binary's migrations; returns the data file and the manifest.
pub fn verify(path: &Path) -> anyhow::Result<(PathBuf, Manifest)> {
    let manifest_file = if path.to_string_lossy().ends_with(".manifest.json") {
        path.to_owned()
    } else {
        manifest_path(path)
    };
    let text = std::fs::read_to_string(&manifest_file).with_context(|| {
        format!(
            "no manifest at {}: not a Stratix backup",
            manifest_file.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup manifest", manifest_file.display()))?;
    ensure!(
        manifest.format == FORMAT,
        "the manifest's format {} is not {FORMAT}",
        manifest.format
    );
    let file = manifest_file.with_file_name(&manifest.file);
    let (bytes, sha256) = digest(&file)?;
    ensure!(
        bytes == manifest.bytes,
        "{} is {bytes} bytes, the manifest says {}: truncated or damaged",
        file.display(),
        manifest.bytes
    );
    ensure!(
        sha256 == manifest.sha256,
        "{}'s SHA-256 differs from the manifest's: damaged",
        file.display()
    );
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    if let Some(unknown) = manifest.migrations.iter().find(|m| !known.contains(m)) {
        bail!(
            "the backup's schema is newer than this stratix {} knows (migration {unknown}): restore it with a newer stratix",
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok((file, manifest))
}

/// What a restore found afterwards.
#[derive(Debug)]
pub struct Restored {
    /// The manifest restored from.
    pub manifest: Manifest,
    /// `stratix check` on the restored database.
    pub check: check::Report,
}

/// Restores the backup at `path` into the database at `url`, replacing what is there.
/// Nothing is touched unless the backup verifies.
pub async fn restore(path: &Path, url: &str) -> anyhow::Result<Restored> {
    let (file, manifest) = verify(path)?;
    let postgres = !url.starts_with("sqlite");
    ensure!(
        (manifest.backend == "postgres") == postgres,
        "a {} backup cannot be restored into {}",
        manifest.backend,
        crate::redact(url)
    );
    if postgres {
        restore_postgres(&file, url).await?;
    } else {
        restore_sqlite(&file, url)?;
    }
    let db = crate::db::connect_for_migrations(url).await?;
    let counts = row_counts(&db).await?;
    let differ: Vec<String> = manifest
        .row_counts
        .iter()
        .filter(|(table, n)| counts.get(*table) != Some(n))
        .map(|(table, n)| {
            format!(
                "{table}: {} of {n}",
                counts.get(table).copied().unwrap_or(0)
            )
        })
        .collect();
    ensure!(
        differ.is_empty(),
        "restored row counts differ from the manifest: {}",
        differ.join(", ")
    );
    Migrator::up(&db, None)
        .await
        .context("applying migrations newer than the backup")?;
    let check = check::run(&db).await?;
    db.close().await?;
    Ok(Restored { manifest, check })
}

/// SQLite: copies the backup next to the target, then renames it over the target.
fn restore_sqlite(file: &Path, url: &str) -> anyhow::Result<()> {
    let target = sqlite_path(url)?;
    let mut staged = target.as_os_str().to_owned();
    staged.push(".restoring");
    let staged = PathBuf::from(staged);
    std::fs::copy(file, &staged)
        .with_context(|| format!("cannot copy the backup next to {}", target.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    Ok(())
}

/// The file of a `sqlite://` URL.
fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let path = rest.split('?').next().unwrap_or_default();
    ensure!(
        !path.is_empty() && path != ":memory:",
        "cannot restore into an in-memory database"
    );
    Ok(PathBuf::from(path))
}

/// PostgreSQL: the dump as SQL (`pg_restore -f -`) after dropping the `public` schema,
/// all in one `psql` transaction: it ends restored, or as it was.
async fn restore_postgres(file: &Path, url: &str) -> anyhow::Result<()> {
    let pg_restore = postgres_tool("pg_restore")?;
    let psql = postgres_tool("psql")?;
    let mut script = tokio::process::Command::new(&pg_restore)
        .arg("--no-owner")
        .arg("--file=-")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", pg_restore.display()))?;
    let mut apply = tokio::process::Command::new(&psql)
        .args(["--no-psqlrc", "--quiet", "--single-transaction"])
        .args(["--set=ON_ERROR_STOP=1", "--file=-", "--dbname"])
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", psql.display()))?;
    let mut input = apply.stdin.take().context("psql's stdin")?;
    let mut dump = script.stdout.take().context("pg_restore's stdout")?;
    let feed = async {
        use tokio::io::AsyncWriteExt as _;
        input
            .write_all(b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
            .await?;
        tokio::io::copy(&mut dump, &mut input).await?;
        input.shutdown().await?;
        drop(input);
        Ok::<_, std::io::Error>(())
    };
    let (fed, dumped, applied) =
        tokio::join!(feed, script.wait_with_output(), apply.wait_with_output());
    let dumped = dumped?;
    let applied = applied?;
    ensure!(
        dumped.status.success(),
        "pg_restore cannot read the backup: {}",
        String::from_utf8_lossy(&dumped.stderr).trim()
    );
    fed.context("feeding the backup to psql")?;
    ensure!(
        applied.status.success(),
        "restoring failed; the database is unchanged: {}",
        String::from_utf8_lossy(&applied.stderr).trim()
    );
    Ok(())
}

/// A PostgreSQL client program: on the `PATH`, else in the newest
/// `/usr/lib/postgresql/*/bin`.
fn postgres_tool(name: &str) -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if let Some(path) = on_path {
        return Ok(path);
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let path = entry.path().join("bin").join(name);
            path.is_file().then_some((version, path))
        })
        .collect();
    installed.sort();
    installed.pop().map(|(_, path)| path).with_context(|| {
        format!("{name} is not installed (PostgreSQL's client programs are needed for PostgreSQL backups): install postgresql-client")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_carry_their_utc_time() {
        let t = taken_at(Path::new("/b/stratix-20261207T073000Z.sqlite"));
        assert_eq!(
            t.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-07T07:30:00+00:00")
        );
        assert!(
            taken_at(Path::new(
                "/b/stratix-20261207T073000Z.sqlite.manifest.json"
            ))
            .is_none()
        );
        assert!(taken_at(Path::new("/b/notes.txt")).is_none());
    }

    #[test]
    fn pruning_removes_week_old_backups_but_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("stratix-prune-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "stratix-20261101T000000Z.dump",
            "stratix-20261130T000000Z.dump",
            "stratix-20261206T000000Z.dump",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().to_utc();

        let pruned = prune(&dir, at("2026-12-07T00:00:00Z")).unwrap();
        // A month later only old backups are left: the newest stays.
        let later = prune(&dir, at("2027-01-07T00:00:00Z")).unwrap();

        assert_eq!(pruned, vec![dir.join("stratix-20261101T000000Z.dump")]);
        assert_eq!(later, vec![dir.join("stratix-20261130T000000Z.dump")]);
        assert!(dir.join("stratix-20261206T000000Z.dump").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
