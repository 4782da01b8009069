//! Expired rows: tables whose rows expire (`TableSpec::expires`, the cache) hide them at
//! once through the scope's conditions; this sweep deletes them, a job of `stratix serve`.

use std::time::Duration;

use chrono::Utc;
use migration::catalog::TABLES;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// How often expired rows are deleted.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Deletes every expired row; returns how many.
pub async fn sweep(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let now = Utc::now();
    let mut deleted = 0;
    for spec in TABLES {
        let Some(column) = spec.expires else {
            continue;
        };
        let mut delete = Query::delete();
        delete
            .from_table(spec.name)
            .and_where(Expr::col(column).lte(now));
        deleted += db.execute(&delete).await?.rows_affected();
    }
    Ok(deleted)
}
