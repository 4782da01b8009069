//! What the feed carries: writes as the service publishes them, and change events with
//! their cursor.

use serde::Deserialize;
use uuid::Uuid;

use crate::store::Row;
use crate::tables::{Table, tables};

/// What happened to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The row was inserted.
    Insert,
    /// The row was updated.
    Update,
    /// The row was deleted.
    Delete,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 3] = [Op::Insert, Op::Update, Op::Delete];

    /// The SQL (and GraphQL enum) name: `INSERT`, `UPDATE`, `DELETE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }

    /// The operation named `name` (`INSERT`, `UPDATE`, `DELETE`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    pub(super) fn bit(self) -> u8 {
        match self {
            Self::Insert => 1,
            Self::Update => 2,
            Self::Delete => 4,
        }
    }
}

/// A committed write, as the service publishes it on SQLite (see
/// [`Broker::publish`](super::Broker::publish)). On PostgreSQL the triggers publish every
/// write, so publishing there does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The table written (its SQL name).
    pub table: &'static str,
    /// What happened.
    pub op: Op,
    /// The row's `id`.
    pub id: Uuid,
    /// The row's owner column (see `migration::catalog`); `None` only for shared rows.
    pub owner: Option<Uuid>,
    /// The table's feed key column (`migration::feed_key`: a task's `clone_id`, a
    /// message's `conversation_id`, ...), if the table has one.
    pub key: Option<Uuid>,
}

impl Write {
    /// A write of `op` to row `id` of `table`, owned by `owner`.
    pub fn new(table: &'static str, op: Op, id: Uuid, owner: Option<Uuid>) -> Self {
        Self {
            table,
            op,
            id,
            owner,
            key: None,
        }
    }

    /// An insert.
    pub fn insert(table: &'static str, id: Uuid, owner: Option<Uuid>) -> Self {
        Self::new(table, Op::Insert, id, owner)
    }

    /// An update.
    pub fn update(table: &'static str, id: Uuid, owner: Option<Uuid>) -> Self {
        Self::new(table, Op::Update, id, owner)
    }

    /// A delete.
    pub fn delete(table: &'static str, id: Uuid, owner: Option<Uuid>) -> Self {
        Self::new(table, Op::Delete, id, owner)
    }

    /// The same write with the table's feed key value.
    pub fn key(self, key: Uuid) -> Self {
        Self {
            key: Some(key),
            ..self
        }
    }
}

/// One change event: a write with its place in the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its position: strictly increasing in the order events are delivered.
    pub cursor: i64,
    /// The table (index into [`tables()`]).
    pub table: usize,
    /// What happened.
    pub op: Op,
    /// The row's `id`.
    pub id: Uuid,
    /// The row's owner (for deletes, the deleted row's).
    pub owner: Option<Uuid>,
    /// The table's feed key value, if it has one.
    pub key: Option<Uuid>,
}

impl Change {
    /// The table model entry.
    pub fn table(&self) -> &'static Table {
        &tables().all[self.table]
    }

    /// The event for `write` at `cursor`; `None` for a table the API does not serve.
    pub fn of_write(cursor: i64, write: &Write) -> Option<Self> {
        Some(Self {
            cursor,
            table: tables().get(write.table)?.index,
            op: write.op,
            id: write.id,
            owner: write.owner,
            key: write.key,
        })
    }

    /// Reads the `pg_notify` payload the change-feed trigger sends. `Err` for a payload
    /// that is not one; `Ok((cursor, None))` for a table the API does not serve.
    pub fn of_notification(payload: &str) -> Result<(i64, Option<Self>), serde_json::Error> {
        #[derive(Deserialize)]
        struct Notice {
            cursor: i64,
            table: String,
            op: String,
            id: Uuid,
            owner: Option<Uuid>,
            key: Option<Uuid>,
        }
        let notice: Notice = serde_json::from_str(payload)?;
        let change = tables()
            .get(&notice.table)
            .zip(Op::parse(&notice.op))
            .map(|(table, op)| Self {
                cursor: notice.cursor,
                table: table.index,
                op,
                id: notice.id,
                owner: notice.owner,
                key: notice.key,
            });
        Ok((notice.cursor, change))
    }
}

/// A change as one subscriber receives it: the event, and the row as that subscriber may
/// read it (`None` for deletes, and for rows gone or out of sight by the time they were
/// read).
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub change: std::sync::Arc<Change>,
    /// The row, read with the subscriber's scope.
    pub node: Option<std::sync::Arc<Row>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_parse_and_unknown_tables_keep_their_cursor() {
        let id = Uuid::new_v4();
        let payload = format!(
            r#"{{"cursor": 7, "table": "ai_tasks", "op": "UPDATE", "id": "{id}", "owner": null, "key": null}}"#
        );
        let (cursor, change) = Change::of_notification(&payload).unwrap_or((0, None));
        assert_eq!(cursor, 7);
        assert_eq!(change.map(|c| (c.op, c.id)), Some((Op::Update, id)));

        let payload = format!(
            r#"{{"cursor": 8, "table": "not_served", "op": "INSERT", "id": "{id}", "owner": null, "key": null}}"#
        );
        assert_eq!(Change::of_notification(&payload).ok(), Some((8, None)));
        assert!(Change::of_notification("{}").is_err());
    }
}
