//! `stratix backup` and `stratix restore`: every row of every table survives the round
//! trip into a new database; a damaged, truncated or newer backup is refused and the
//! target stays as it was.

use std::path::{Path, PathBuf};

use migration::catalog::TABLES;
use sea_orm::DatabaseConnection;

use crate::common::process::stratix;
use crate::common::{TestDb, fixtures, on_both_backends, world};

/// A fresh, empty database of `t`'s backend.
async fn another(t: &TestDb) -> TestDb {
    if t.is_postgres() {
        TestDb::postgres().await.unwrap()
    } else {
        TestDb::sqlite().await
    }
}

/// Every row of `table`, as text, in order: `quote()` of each column on SQLite, the row
/// value's text on PostgreSQL.
async fn rows(db: &DatabaseConnection, table: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        format!("SELECT CAST(t AS text) AS r FROM {table} AS t ORDER BY 1")
    } else {
        let columns = migration::introspect::columns(db, table).await.unwrap();
        let row = columns
            .iter()
            .map(|c| format!("quote(\"{}\")", c.name))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        format!("SELECT {row} AS r FROM {table} ORDER BY 1")
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "r").unwrap())
        .collect()
}

/// A new directory under the system's temporary one.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stratix-backup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `stratix backup` of `t` into `dir`; the data file.
async fn back_up(t: &TestDb, dir: &Path) -> PathBuf {
    let out = stratix(t)
        .args(["backup", "--dir"])
        .arg(dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.split(' ').next().unwrap())
}

/// Runs `stratix restore` of `file` into `t` with `args`; success, stdout and stderr.
async fn restore(t: &TestDb, file: &Path, args: &[&str]) -> (bool, String, String) {
    let out = stratix(t)
        .arg("restore")
        .arg(file)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

on_both_backends! {
    async fn every_row_of_every_table_survives_backup_and_restore_into_a_new_database(t) {
        let t = t.migrated().await;
        world::build(&t.db).await;
        let counts = api::ops::backup::row_counts(&t.db).await.unwrap();
        let empty: Vec<_> = counts.iter().filter(|(_, n)| **n == 0).collect();
        assert!(empty.is_empty(), "tables without rows: {empty:?}");
        assert_eq!(counts.len(), TABLES.len());
        let dir = scratch();
        let target = another(&t).await;

        let file = back_up(&t, &dir).await;
        let (ok, stdout, stderr) = restore(&target, &file, &["--yes"]).await;

        // The restore ends with `stratix check`, which says of the copy what it says of the
        // original (the world's ledger rows are not all reflected in balances, on purpose).
        let original = api::ops::check::run(&t.db).await.unwrap();
        assert_eq!(stdout, original.to_string(), "{stderr}");
        assert_eq!(ok, original.passed(), "{stderr}");
        assert!(stderr.contains("row counts match the manifest"), "{stderr}");
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.manifest.json", file.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["row_counts"]["users"], counts["users"]);
        assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);
        // A new pool: on SQLite the restore replaced the file under the old one.
        let restored = api::db::connect(&target.url).await.unwrap();
        for table in TABLES {
            let (before, after) = (rows(&t.db, table.name).await, rows(&restored, table.name).await);
            assert_eq!(before.len(), counts[table.name] as usize, "{}", table.name);
            assert!(before == after, "{} differs after the restore", table.name);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn a_damaged_truncated_or_newer_backup_is_refused_and_the_target_kept(t) {
        let t = t.migrated().await;
        fixtures::user(&t.db, "backed-up@example.com").await;
        let dir = scratch();
        let file = back_up(&t, &dir).await;
        let manifest = PathBuf::from(format!("{}.manifest.json", file.display()));
        let target = another(&t).await.migrated().await;
        fixtures::user(&target.db, "kept@example.com").await;
        let copy = |case: &str, edit: &dyn Fn(&mut Vec<u8>, &mut String)| {
            let dir = dir.join(case);
            std::fs::create_dir_all(&dir).unwrap();
            let mut data = std::fs::read(&file).unwrap();
            let mut text = std::fs::read_to_string(&manifest).unwrap();
            edit(&mut data, &mut text);
            let copied = dir.join(file.file_name().unwrap());
            std::fs::write(&copied, data).unwrap();
            std::fs::write(dir.join(manifest.file_name().unwrap()), text).unwrap();
            copied
        };
        let damaged = copy("damaged", &|data, _| {
            let middle = data.len() / 2;
            data[middle] ^= 0xff;
        });
        let truncated = copy("truncated", &|data, _| data.truncate(data.len() / 2));
        let newer = copy("newer", &|_, text| {
            *text = text.replacen("\"migrations\": [", "\"migrations\": [\n    \"m29991231_000001_from_the_future\",", 1);
        });

        let refusals = [
            (restore(&target, &damaged, &["--yes"]).await, "damaged"),
            (restore(&target, &truncated, &["--yes"]).await, "truncated"),
            (restore(&target, &newer, &["--yes"]).await, "newer"),
            (restore(&target, &file, &[]).await, "--yes"),
        ];

        for ((ok, _, stderr), why) in refusals {
            assert!(!ok, "restored despite: {why}");
            assert!(stderr.contains(why), "{why}: {stderr}");
        }
        let pool = api::db::connect(&target.url).await.unwrap();
        let emails = rows(&pool, "users").await.join("\n");
        assert!(emails.contains("kept@example.com"), "{emails}");
        assert!(!emails.contains("backed-up@example.com"), "{emails}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
