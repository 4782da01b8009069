//! The dispatcher task: routes queued events to subscribers, reads each changed row once
//! per distinct reader, and fills the mailboxes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use migration::catalog::Tenant;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::mailbox::{ENDED_MISSED, ENDED_SLOW};
use super::session::{Access, Route, Session, load_rows, routes};
use super::{Dispatch, Entry, Inner, LOAD_CONCURRENCY, Status, Subscriber};
use crate::auth;
use crate::realtime::change::{Change, Delivery, Op};
use crate::store::Row;
use crate::tables::tables;

/// The dispatcher task: routes queued events, reads their rows, fills the buffers.
pub(super) async fn dispatcher(inner: Arc<Inner>, mut queue: mpsc::Receiver<Dispatch>) {
    while let Some(first) = queue.recv().await {
        if inner.overflow.swap(false, Ordering::AcqRel) {
            inner.end_all(ENDED_MISSED);
        }
        let mut work = vec![first];
        while work.len() < 64 {
            match queue.try_recv() {
                Ok(more) => work.push(more),
                Err(_) => break,
            }
        }
        let mut changes = Vec::new();
        for item in work {
            match item {
                Dispatch::Changes(more) => changes.extend(more),
                Dispatch::Reset(cursor) => {
                    deliver(&inner, std::mem::take(&mut changes)).await;
                    inner.end_all(ENDED_MISSED);
                    inner.state().routed = cursor;
                    inner.status.send_replace(Status::Ready);
                }
            }
        }
        deliver(&inner, changes).await;
    }
}

/// Delivers `changes`; a change to `user_profiles` refreshes that user's scope before the
/// changes after it are routed.
async fn deliver(inner: &Inner, changes: Vec<Change>) {
    let memberships = tables().get("user_profiles").map(|t| t.index);
    let mut batch = Vec::new();
    for change in changes {
        let refresh = (Some(change.table) == memberships)
            .then_some(change.key)
            .flatten();
        batch.push(change);
        if let Some(user) = refresh {
            deliver_batch(inner, std::mem::take(&mut batch)).await;
            refresh_scopes(inner, user).await;
        }
    }
    deliver_batch(inner, batch).await;
}

async fn deliver_batch(inner: &Inner, changes: Vec<Change>) {
    let Some(last) = changes.last().map(|c| c.cursor) else {
        return;
    };
    type Recipients = Vec<(u64, Arc<Subscriber>, Arc<Access>)>;
    let routed: Vec<(Arc<Change>, Recipients)> = {
        let mut state = inner.state();
        state.routed = state.routed.max(last);
        changes
            .into_iter()
            .map(|change| {
                let recipients = state
                    .recipients(&change)
                    .into_iter()
                    .map(|(id, s)| {
                        let access = s.session.access();
                        (id, s, access)
                    })
                    .collect();
                (Arc::new(change), recipients)
            })
            .collect()
    };
    // One read per table and distinct reader, for the whole batch.
    let mut wanted: HashMap<(usize, Arc<Access>), HashSet<Uuid>> = HashMap::new();
    for (change, recipients) in &routed {
        if change.op == Op::Delete {
            continue;
        }
        for (_, _, access) in recipients {
            wanted
                .entry((change.table, access.clone()))
                .or_default()
                .insert(change.id);
        }
    }
    let loads = futures_util::stream::iter(wanted)
        .map(|((table, access), ids)| async move {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            let rows = load_rows(&inner.db, &access, &tables().all[table], &ids).await;
            ((table, access), rows)
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut loaded: HashMap<(usize, Arc<Access>), HashMap<Uuid, Arc<Row>>> = HashMap::new();
    let mut failed: HashSet<(usize, Arc<Access>)> = HashSet::new();
    for (key, rows) in loads {
        match rows {
            Ok(rows) => {
                loaded.insert(key, rows);
            }
            Err(error) => {
                tracing::error!(?error, "realtime: reading changed rows failed");
                failed.insert(key);
            }
        }
    }
    let mut slow = Vec::new();
    let mut missed = Vec::new();
    let mut delivered = 0;
    for (change, recipients) in routed {
        let mut copies: HashMap<Arc<Access>, Arc<Delivery>> = HashMap::new();
        for (id, subscriber, access) in recipients {
            let key = (change.table, access.clone());
            if failed.contains(&key) {
                missed.push(id);
                continue;
            }
            let delivery = copies
                .entry(access)
                .or_insert_with(|| {
                    let node = match change.op {
                        Op::Delete => None,
                        _ => loaded
                            .get(&key)
                            .and_then(|rows| rows.get(&change.id))
                            .cloned(),
                    };
                    Arc::new(Delivery {
                        change: change.clone(),
                        node,
                    })
                })
                .clone();
            if subscriber.mailbox.push(delivery).is_err() {
                slow.push(id);
            } else {
                delivered += 1;
            }
        }
    }
    crate::telemetry::metrics::events_delivered(delivered);
    crate::telemetry::metrics::events_dropped("slow_consumer", slow.len());
    crate::telemetry::metrics::events_dropped("read_failed", missed.len());
    if !slow.is_empty() || !missed.is_empty() {
        let mut state = inner.state();
        for id in slow {
            state.end(id, ENDED_SLOW);
        }
        for id in missed {
            state.end(id, ENDED_MISSED);
        }
    }
}

/// Re-reads the scope of `user`'s sessions after a membership change, and re-routes their
/// subscriptions.
async fn refresh_scopes(inner: &Inner, user: Uuid) {
    let sessions: Vec<Arc<Session>> = {
        let state = inner.state();
        let mut seen = HashSet::new();
        state
            .routes
            .get(&Route::Owner(Tenant::User, user))
            .into_iter()
            .flatten()
            .map(|(_, s)| s.session.clone())
            .filter(|s| seen.insert(Arc::as_ptr(s) as usize))
            .collect()
    };
    let Some(principal) = sessions.first().map(|s| s.principal.clone()) else {
        return;
    };
    let refreshed = auth::scope_of(&inner.db, &principal).await;
    let mut state = inner.state();
    let ids: Vec<u64> = state
        .entries
        .iter()
        .filter(|(_, e)| {
            sessions
                .iter()
                .any(|s| Arc::ptr_eq(s, &e.subscriber.session))
        })
        .map(|(id, _)| *id)
        .collect();
    let scope = match refreshed {
        Ok(scope) => scope,
        Err(error) => {
            // Not knowing the scope, stop: the subscribers resume and are scoped afresh.
            tracing::error!(?error, %user, "realtime: refreshing a scope failed");
            for id in ids {
                state.end(id, ENDED_MISSED);
            }
            return;
        }
    };
    for session in &sessions {
        session.set_scope(scope.clone());
    }
    let new_routes = routes(&scope);
    for id in ids {
        if let Some(entry) = state.entries.remove(&id) {
            state.remove_routes(id, &entry.routes);
            state.add_routes(id, &entry.subscriber, &new_routes);
            state.entries.insert(
                id,
                Entry {
                    subscriber: entry.subscriber,
                    routes: new_routes.clone(),
                },
            );
        }
    }
}
