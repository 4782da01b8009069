//! The request's batch loader: every relation, count and aggregate below the root goes
//! through one async-graphql `DataLoader`, keyed by what is asked (a [`Spec`]) and for
//! which parent. Keys with the same spec become one SQL statement.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use uuid::Uuid;

use crate::db::RequestDb;
use crate::error::ApiError;
use crate::store::{
    self, AggregateQuery, AggregateRow, Columns, Filter, ListQuery, PageRows, Parents, Row, Scope,
};
use crate::tables::{Table, tables};

/// What to load for each parent key.
#[derive(Debug)]
pub enum Spec {
    /// The rows of `table` with these ids (a `belongs_to` parent, or `node`).
    Rows {
        /// The table.
        table: usize,
        /// The columns to select.
        columns: Columns,
    },
    /// A page of `table`'s rows whose `foreign_key` is the parent's id.
    Page {
        /// The child table.
        table: usize,
        /// The child column pointing at the parent.
        foreign_key: usize,
        /// Which rows, in which order.
        query: ListQuery,
    },
    /// How many of `table`'s rows point at the parent.
    Count {
        /// The child table.
        table: usize,
        /// The child column pointing at the parent.
        foreign_key: usize,
        /// Which rows.
        filter: Option<Filter>,
    },
    /// Aggregates over `table`'s rows that point at the parent.
    Aggregate {
        /// The child table.
        table: usize,
        /// The child column pointing at the parent.
        foreign_key: usize,
        /// What to compute.
        query: AggregateQuery,
    },
}

/// A [`Spec`] with its identity precomputed, so keys hash and compare cheaply.
#[derive(Clone)]
pub struct SpecRef {
    signature: Arc<str>,
    spec: Arc<Spec>,
}

impl SpecRef {
    /// Wraps `spec`; its `Debug` text is its identity.
    pub fn new(spec: Spec) -> Self {
        Self {
            signature: format!("{spec:?}").into(),
            spec: Arc::new(spec),
        }
    }
}

impl SpecRef {
    /// The spec itself.
    pub fn spec(&self) -> Arc<Spec> {
        self.spec.clone()
    }
}

impl fmt::Debug for SpecRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.signature)
    }
}

impl PartialEq for SpecRef {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature
    }
}

impl Eq for SpecRef {}

impl Hash for SpecRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.signature.hash(state);
    }
}

/// One thing to load: a spec for one parent id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// What to load.
    pub spec: SpecRef,
    /// For which parent (or, for `Spec::Rows`, which row).
    pub id: Uuid,
}

/// What a key loads.
#[derive(Clone, Debug)]
pub enum Loaded {
    /// `Spec::Rows`: the row, if visible.
    Row(Option<Arc<Row>>),
    /// `Spec::Page`: the parent's page of children.
    Page(Arc<PageRows>),
    /// `Spec::Count`: the number of children.
    Count(u64),
    /// `Spec::Aggregate`: the aggregate rows (one per group).
    Aggregate(Arc<Vec<AggregateRow>>),
}

/// Loads keys for one request, with that request's scope.
pub struct BatchLoader {
    db: RequestDb,
    scope: Scope,
}

/// The loader type as stored in the request's data.
pub type Batches = DataLoader<BatchLoader, HashMapCache>;

impl BatchLoader {
    /// A loader over `db` that reads what `scope` may see.
    pub fn new(db: RequestDb, scope: Scope) -> Self {
        Self { db, scope }
    }
}

/// Loads `spec` for each of `ids` in one statement, as `scope` may see it.
pub async fn load(
    db: &RequestDb,
    scope: &Scope,
    spec: &Spec,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Loaded>, ApiError> {
    let table = |index: usize| -> &'static Table { &tables().all[index] };
    let parents = |foreign_key: usize| Parents { foreign_key, ids };
    Ok(match spec {
        Spec::Rows { table: t, columns } => {
            let mut found = store::find_by_ids(db, scope, table(*t), *columns, ids).await?;
            ids.iter()
                .map(|id| (*id, Loaded::Row(found.remove(id).map(Arc::new))))
                .collect()
        }
        Spec::Page {
            table: t,
            foreign_key,
            query,
        } => {
            let mut pages =
                store::list_by_parents(db, scope, table(*t), query, parents(*foreign_key)).await?;
            ids.iter()
                .map(|id| {
                    (
                        *id,
                        Loaded::Page(Arc::new(pages.remove(id).unwrap_or_default())),
                    )
                })
                .collect()
        }
        Spec::Count {
            table: t,
            foreign_key,
            filter,
        } => {
            let counts = store::count_by_parents(
                db,
                scope,
                table(*t),
                filter.as_ref(),
                parents(*foreign_key),
            )
            .await?;
            ids.iter()
                .map(|id| (*id, Loaded::Count(counts.get(id).copied().unwrap_or(0))))
                .collect()
        }
        Spec::Aggregate {
            table: t,
            foreign_key,
            query,
        } => {
            let mut rows =
                store::aggregate(db, scope, table(*t), query, Some(parents(*foreign_key))).await?;
            ids.iter()
                .map(|id| {
                    let groups = rows.remove(&Some(*id)).unwrap_or_default();
                    (*id, Loaded::Aggregate(Arc::new(groups)))
                })
                .collect()
        }
    })
}

impl Loader<Key> for BatchLoader {
    type Value = Loaded;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Key]) -> Result<HashMap<Key, Loaded>, Self::Error> {
        let mut by_spec: HashMap<&SpecRef, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_spec.entry(&key.spec).or_default().push(key.id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (spec, ids) in by_spec {
            let loaded = load(&self.db, &self.scope, &spec.spec, &ids)
                .await
                .map_err(Arc::new)?;
            out.extend(loaded.into_iter().map(|(id, value)| {
                (
                    Key {
                        spec: spec.clone(),
                        id,
                    },
                    value,
                )
            }));
        }
        Ok(out)
    }
}
