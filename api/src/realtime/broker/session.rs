//! Who subscribes and what they want: sessions (principal, scope, claims), filters, and
//! the routes a scope listens on.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use migration::catalog::Tenant;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{FeedError, MAX_TABLES};
use crate::auth::Principal;
use crate::db::{End, RequestDb};
use crate::realtime::change::{Change, Op};
use crate::store::{self, Columns, Row, Scope};
use crate::tables::{Table, tables};

/// Who is subscribed, as the broker sees it: the principal, its claims and its scope. The
/// scope is refreshed when the principal's distributor memberships change.
#[derive(Debug)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    access: RwLock<Arc<Access>>,
}

/// How a session reads rows: its scope and its row-level-security claims. Sessions of the
/// same principal share reads.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Access {
    pub(super) scope: Scope,
    pub(super) claims: String,
}

impl Session {
    /// A session of `principal` reading with `scope`.
    pub fn new(principal: Principal, scope: Scope) -> Self {
        let claims = principal.claims().to_string();
        Self {
            principal,
            access: RwLock::new(Arc::new(Access { scope, claims })),
        }
    }

    /// The scope the session reads with now.
    pub fn scope(&self) -> Scope {
        self.access().scope.clone()
    }

    pub(super) fn access(&self) -> Arc<Access> {
        self.access
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_scope(&self, scope: Scope) {
        let claims = self.principal.claims().to_string();
        *self
            .access
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Access { scope, claims });
    }
}

/// Which events a subscription wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// A bit per table (see [`MAX_TABLES`]).
    tables: u128,
    ops: u8,
    id: Option<Uuid>,
    key: Option<Uuid>,
}

impl Filter {
    /// Events of these tables (indexes into [`tables()`]) and operations.
    pub fn new(tables: impl IntoIterator<Item = usize>, ops: impl IntoIterator<Item = Op>) -> Self {
        Self {
            tables: tables
                .into_iter()
                .filter(|t| *t < MAX_TABLES)
                .fold(0, |bits, t| bits | 1 << t),
            ops: ops.into_iter().fold(0, |bits, op| bits | op.bit()),
            id: None,
            key: None,
        }
    }

    /// Only the row `id`.
    pub fn id(self, id: Uuid) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }

    /// Only rows whose feed key is `key`.
    pub fn key(self, key: Uuid) -> Self {
        Self {
            key: Some(key),
            ..self
        }
    }

    /// Whether `change` is wanted.
    pub fn matches(&self, change: &Change) -> bool {
        change.table < MAX_TABLES
            && self.tables & 1 << change.table != 0
            && self.ops & change.op.bit() != 0
            && self.id.is_none_or(|id| id == change.id)
            && self.key.is_none_or(|key| Some(key) == change.key)
    }

    pub(super) fn table_names(&self) -> Vec<&'static str> {
        tables()
            .all
            .iter()
            .filter(|t| t.index < MAX_TABLES && self.tables & 1 << t.index != 0)
            .map(|t| t.name)
            .collect()
    }
}

/// Where a subscriber listens: the owners whose rows it may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Route {
    /// Rows owned by this tenant.
    Owner(Tenant, Uuid),
    /// Shared rows (owner null) of tables of this tenant kind.
    Shared(Tenant),
    /// Every row (`service_role`).
    All,
}

pub(super) fn routes(scope: &Scope) -> Vec<Route> {
    match scope {
        Scope::Service => vec![Route::All],
        Scope::User {
            id, distributors, ..
        } => {
            let mut routes = vec![Route::Owner(Tenant::User, *id), Route::Shared(Tenant::User)];
            routes.extend(
                distributors
                    .iter()
                    .map(|d| Route::Owner(Tenant::Distributor, *d)),
            );
            if !distributors.is_empty() {
                routes.push(Route::Shared(Tenant::Distributor));
            }
            routes
        }
        Scope::Shop { id } => vec![Route::Owner(Tenant::Shop, *id), Route::Shared(Tenant::Shop)],
        Scope::Nobody => Vec::new(),
    }
}

/// Reads rows of `table` with `access`'s scope, on PostgreSQL inside a transaction under
/// its claims (row-level security applies), every column the API serves.
pub(super) async fn load_rows(
    db: &DatabaseConnection,
    access: &Access,
    table: &Table,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Arc<Row>>, FeedError> {
    let claims: serde_json::Value =
        serde_json::from_str(&access.claims).unwrap_or(serde_json::Value::Null);
    let request = RequestDb::begin(db, &claims, crate::db::Access::Read).await?;
    let columns = (0..table.columns.len()).fold(Columns::default(), |c, i| c.with(i));
    let found = store::find_by_ids(&request, &access.scope, table, columns, ids).await;
    request.finish(End::Discard).await?;
    let found = found?;
    Ok(found
        .into_iter()
        .map(|(id, row)| (id, Arc::new(row)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_fits_a_filter() {
        assert!(tables().all.len() <= MAX_TABLES);
        let last = tables().all.len() - 1;
        let filter = Filter::new([0, last], [Op::Delete]);
        assert_eq!(filter.table_names().len(), 2);
    }
}
