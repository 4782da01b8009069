//! Opening a request, for HTTP and WebSocket alike: who asks (the principal), which rows
//! they see (the scope), the request's database work (one transaction), its batch loader
//! and its outbox; and ending it: commit or roll back, then publish what was committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use sea_orm::{ConnectionTrait as _, DatabaseConnection};

use crate::auth::{Keys, Principal};
use crate::db::{Access, End, RequestDb};
use crate::domains::WriteCtx;
use crate::domains::distribution::audits::AuditLog;
use crate::error::ApiResult;
use crate::graphql::batch_loader;
use crate::realtime::Broker;
use crate::state::AppState;
use crate::store::{Outbox, Scope};

/// What every resolver of one request reads: the database, who is asking, and where its
/// writes are recorded. Its clones share the transaction, the outbox and the failure flag.
#[derive(Clone)]
pub struct RequestContext {
    /// The request's database (on PostgreSQL, its transaction under row-level security).
    pub db: RequestDb,
    /// The principal's row visibility.
    pub scope: Scope,
    /// Who is asking.
    pub principal: Principal,
    /// The pool with the service's own rights, for what the service does on its own
    /// account (creating an account at sign-up, checking a password).
    pub pool: DatabaseConnection,
    /// The keys tokens are signed and checked with.
    pub keys: Arc<Keys>,
    /// The deployment's switches.
    pub options: Arc<crate::state::Options>,
    /// The writes made so far, published after the commit.
    pub outbox: Arc<Outbox>,
    /// Set when a mutation of the request failed: the whole request rolls back.
    pub failed: Arc<AtomicBool>,
    /// Where the request's audited accesses go.
    pub audits: AuditLog,
}

impl RequestContext {
    /// Marks the request as failed: nothing it wrote is committed or published.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// The database with the service's own rights, for what the service does on its own
    /// account (creating an account, checking a password): on PostgreSQL the pool,
    /// outside the caller's claims; on SQLite (no claims, one writer) the request's own
    /// transaction, which may already hold the write lock.
    pub fn service_db(&self) -> RequestDb {
        match &self.db {
            RequestDb::Transaction(_)
                if self.db.get_database_backend() == sea_orm::DbBackend::Sqlite =>
            {
                self.db.clone()
            }
            _ => RequestDb::Pool(self.pool.clone()),
        }
    }

    /// What a workflow works with: this request's principal, scope, transaction and
    /// outbox.
    pub fn work(&self) -> WriteCtx<'_> {
        WriteCtx {
            principal: &self.principal,
            scope: &self.scope,
            db: &self.db,
            outbox: &self.outbox,
            encryption: &self.keys.encryption,
            options: &self.options,
        }
    }

    /// Whether an earlier mutation of the request failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// A request in progress.
pub struct Opened {
    context: RequestContext,
    access: Access,
    realtime: Broker,
    /// Why it ran, for the audits of what it changed: its operation's name.
    reason: OnceLock<String>,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its writes, if any, were committed and published.
    Kept,
    /// It wrote, and nothing it wrote was kept.
    RolledBack,
}

impl AppState {
    /// Opens a request for `principal`, whose rows are `scope`: on PostgreSQL a
    /// transaction under its claims; on SQLite one for a request that writes.
    pub async fn open(
        &self,
        principal: Principal,
        scope: Scope,
        access: Access,
    ) -> ApiResult<Opened> {
        let timeout = Some(self.limits.statement_timeout);
        let db = RequestDb::begin_limited(&self.db, &principal.claims(), access, timeout).await?;
        Ok(Opened {
            context: self.context(db, scope, principal),
            access,
            realtime: self.realtime.clone(),
            reason: OnceLock::new(),
        })
    }

    /// The context of a WebSocket connection's subscriptions: the pool (a subscription
    /// outlives any transaction), nothing to write.
    pub fn subscription_context(&self, scope: Scope, principal: Principal) -> RequestContext {
        self.context(RequestDb::Pool(self.db.clone()), scope, principal)
    }

    fn context(&self, db: RequestDb, scope: Scope, principal: Principal) -> RequestContext {
        RequestContext {
            db,
            scope: self.request_scope(scope),
            principal,
            pool: self.db.clone(),
            keys: self.keys.clone(),
            options: self.options.clone(),
            outbox: Arc::default(),
            failed: Arc::default(),
            audits: self.audits.clone(),
        }
    }
}

impl Opened {
    /// The request's database.
    pub fn db(&self) -> &RequestDb {
        &self.context.db
    }

    /// The request's scope.
    pub fn scope(&self) -> &Scope {
        &self.context.scope
    }

    /// What a workflow works with, for a request that runs one outside GraphQL (a
    /// webhook).
    pub fn work(&self) -> WriteCtx<'_> {
        self.context.work()
    }

    /// Whether a mutation of the request failed (the request will roll back).
    pub fn has_failed(&self) -> bool {
        self.context.has_failed()
    }

    /// Gives a GraphQL request what its resolvers read: the context, a fresh batch
    /// loader and the broker.
    pub fn attach(&self, request: async_graphql::Request) -> async_graphql::Request {
        let context = &self.context;
        self.reason.get_or_init(|| {
            let name = (request.operation_name.as_deref())
                .or_else(|| first_operation_name(&request.query))
                .unwrap_or("unnamed");
            format!("GraphQL operation {name}")
        });
        request
            .data(context.clone())
            .data(batch_loader(context.db.clone(), context.scope.clone()))
            .data(self.realtime.clone())
    }

    /// Ends the request: a write that succeeded (no errors, no failed mutation) commits
    /// and then publishes its writes; anything else rolls back and publishes nothing.
    pub async fn finish(self, ok: bool) -> ApiResult<Ended> {
        let writes = self.access == Access::Write;
        let commit = writes && ok && !self.has_failed();
        let RequestContext {
            db,
            outbox,
            principal,
            audits,
            ..
        } = self.context;
        db.finish(End::commit_if(commit)).await?;
        if commit {
            let writes = outbox.take();
            let reason = self
                .reason
                .get()
                .map_or("a request outside GraphQL", String::as_str);
            audits.changes(&principal, &writes, reason);
            self.realtime.publish(writes);
        }
        Ok(if writes && !commit {
            Ended::RolledBack
        } else {
            Ended::Kept
        })
    }
}

/// The name of a document's first operation (`mutation Rename($id: ID!) {...}`), read
/// without parsing the document (it is parsed once, by the executor): the audits' reason
/// when the request names no operation.
fn first_operation_name(document: &str) -> Option<&str> {
    let mut rest = document;
    // Comments and ignored commas before the first definition.
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, after)| after),
            None => break,
        }
    }
    let rest = ["query", "mutation", "subscription"]
        .iter()
        .find_map(|keyword| rest.strip_prefix(keyword))?;
    let name = rest.trim_start();
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    let starts_well = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (rest.starts_with(char::is_whitespace) && starts_well).then(|| &name[..end])
}

#[cfg(test)]
mod tests {
    use super::first_operation_name;

    #[test]
    fn the_first_operation_name_is_read_from_the_document() {
        assert_eq!(
            first_operation_name("mutation Rename($id: ID!) { x }"),
            Some("Rename")
        );
        assert_eq!(
            first_operation_name("# why\n query   Q_1{ a }"),
            Some("Q_1")
        );
        assert_eq!(first_operation_name("{ a }"), None);
        assert_eq!(first_operation_name("mutation { a }"), None);
        assert_eq!(first_operation_name("mutation($i: X) { a }"), None);
        assert_eq!(first_operation_name("queryX { a }"), None);
    }
}
