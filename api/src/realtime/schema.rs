//! The `Subscription` root: typed feeds (`aiTaskUpdated`, `crawlJobUpdated`,
//! `notificationAdded`, `messageReceived`, `experimentResultsUpdated`) and the generic
//! `rowChanged`, with their event types.

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, SchemaBuilder,
    Subscription, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use async_graphql::{ErrorExtensions, Name, Value as GqlValue};
use futures_util::StreamExt;
use uuid::Uuid;

use super::broker::{Broker, FeedError, Filter, SUBSCRIBER_BUFFER, Session};
use super::change::{Delivery, Op};
use super::resume::{Closing, Position};
use crate::error::ApiError;
use crate::graphql::ids;
use crate::graphql::names::{screaming, type_name};
use crate::store::Scope;
use crate::tables::tables;

/// A typed feed: its field, its table, the arguments that pick rows, and the operations it
/// reports.
struct TypedFeed {
    field: &'static str,
    doc: &'static str,
    table: &'static str,
    /// `(argument, required, what it filters)`.
    args: &'static [(&'static str, bool, Pick)],
    ops: &'static [Op],
}

#[derive(Clone, Copy)]
enum Pick {
    /// The row's own id.
    Id,
    /// The table's feed key (a task's clone, ...).
    Key,
}

const TYPED_FEEDS: &[TypedFeed] = &[
    TypedFeed {
        field: "aiTaskUpdated",
        doc: "Changes to an AI task (`taskId`) or to the tasks of a clone (`cloneId`): give \
              one. Live task status: each event carries the task as it is now.",
        table: "ai_tasks",
        args: &[("taskId", false, Pick::Id), ("cloneId", false, Pick::Key)],
        ops: &Op::ALL,
    },
    TypedFeed {
        field: "crawlJobUpdated",
        doc: "Changes to a crawl job (`id`) or to the jobs of a project (`projectId`): give one.",
        table: "crawl_jobs",
        args: &[("id", false, Pick::Id), ("projectId", false, Pick::Key)],
        ops: &Op::ALL,
    },
    TypedFeed {
        field: "notificationAdded",
        doc: "Notifications as they are created for the signed-in user.",
        table: "notifications",
        args: &[],
        ops: &[Op::Insert],
    },
    TypedFeed {
        field: "messageReceived",
        doc: "Messages as they are added to a conversation (either direction: see \
              `node.direction`).",
        table: "messages",
        args: &[("conversationId", true, Pick::Key)],
        ops: &[Op::Insert],
    },
    TypedFeed {
        field: "experimentResultsUpdated",
        doc: "Changes to the results aggregates of an experiment.",
        table: "results_aggregates",
        args: &[("experimentId", true, Pick::Key)],
        ops: &Op::ALL,
    },
];

const AFTER_DOC: &str = "Resume after this event cursor: the events since then (kept for \
    ten minutes) come first, then live ones, none twice. A cursor older than that fails \
    with `reason: CURSOR_EXPIRED`: refetch, then subscribe without `after`.";

/// The event a feed yields.
struct EventValue(Arc<Delivery>);

fn event<'a>(value: &'a FieldValue<'a>) -> async_graphql::Result<&'a Delivery> {
    Ok(&value.try_downcast_ref::<EventValue>()?.0)
}

fn sync_field(
    name: &str,
    ty: TypeRef,
    doc: &str,
    get: impl for<'a> Fn(&'a Delivery) -> Option<FieldValue<'a>> + Send + Sync + 'static,
) -> Field {
    Field::new(name, ty, move |ctx| match event(ctx.parent_value) {
        Ok(delivery) => FieldFuture::Value(get(delivery)),
        Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(err) }),
    })
    .description(doc)
}

fn enum_value(name: &str) -> FieldValue<'static> {
    FieldValue::value(GqlValue::Enum(Name::new(name)))
}

/// The fields every event type has; `node` is the row's type, or `Node` for `rowChanged`.
fn event_object(name: &str, doc: &str, table_field: bool, node_type: Option<String>) -> Object {
    let mut object = Object::new(name)
        .description(doc)
        .field(sync_field(
            "cursor",
            TypeRef::named_nn(TypeRef::STRING),
            "The event's position: pass it as `after` to resume after this event.",
            |d| Some(FieldValue::value(d.change.cursor.to_string())),
        ))
        .field(sync_field(
            "op",
            TypeRef::named_nn("ChangeOp"),
            "What happened to the row.",
            |d| Some(enum_value(d.change.op.name())),
        ))
        .field(sync_field(
            "id",
            TypeRef::named_nn(TypeRef::ID),
            "The row's global id (also for deletes).",
            |d| {
                let table = d.change.table();
                Some(FieldValue::value(ids::encode(
                    &type_name(table.name),
                    d.change.id,
                )))
            },
        ))
        .field(sync_field(
            "rowId",
            TypeRef::named_nn("UUID"),
            "The row's uuid.",
            |d| Some(FieldValue::value(d.change.id.to_string())),
        ));
    if table_field {
        object = object.field(sync_field(
            "table",
            TypeRef::named_nn("ChangeTable"),
            "The row's table.",
            |d| Some(enum_value(&screaming(d.change.table().name))),
        ));
    }
    let typed = node_type.is_some();
    let node_type = node_type.unwrap_or_else(|| "Node".to_owned());
    object.field(sync_field(
        "node",
        TypeRef::named(node_type),
        "The row as it is now, as the subscriber may read it: null for deletes, and for rows \
         deleted or out of sight by the time the event was read.",
        move |d| {
            let row = d.node.clone()?;
            let value = FieldValue::owned_any(row);
            Some(if typed {
                value
            } else {
                value.with_type(type_name(d.change.table().name))
            })
        },
    ))
}

/// Registers the `Subscription` root and its types.
pub fn register(mut builder: SchemaBuilder) -> SchemaBuilder {
    builder = builder
        .register(
            Enum::new("ChangeOp")
                .description("What happened to a row.")
                .items(Op::ALL.map(Op::name)),
        )
        .register(
            Enum::new("ChangeTable")
                .description("A table, as `rowChanged` names it.")
                .items(
                    tables()
                        .all
                        .iter()
                        .filter(|t| t.spec.is_some_and(|spec| spec.fed))
                        .map(|t| screaming(t.name)),
                ),
        )
        .register(event_object(
            "RowChange",
            "A change to a row the subscriber may read.",
            true,
            None,
        ));
    let mut root = Subscription::new("Subscription").description(
        "Live changes (Supabase Realtime's postgres_changes, tenant-safe and resumable). Every \
         event is one the subscriber may read under the same rules as queries, deletes included.",
    );
    for feed in TYPED_FEEDS {
        let gql_type = type_name(feed.table);
        let event_type = format!("{gql_type}Change");
        builder = builder.register(event_object(
            &event_type,
            &format!("A change to one {gql_type} row."),
            false,
            Some(gql_type.clone()),
        ));
        let mut field =
            SubscriptionField::new(feed.field, TypeRef::named_nn(&event_type), move |ctx| {
                SubscriptionFieldFuture::new(typed_feed(ctx, feed))
            })
            .description(feed.doc);
        for (name, required, _) in feed.args {
            let ty = if *required {
                TypeRef::named_nn(TypeRef::ID)
            } else {
                TypeRef::named(TypeRef::ID)
            };
            field = field.argument(
                InputValue::new(*name, ty).description("A global id (or the row's uuid)."),
            );
        }
        root = root.field(field.argument(after_argument()));
    }
    root = root.field(
        SubscriptionField::new("rowChanged", TypeRef::named_nn("RowChange"), |ctx| {
            SubscriptionFieldFuture::new(row_changed(ctx))
        })
        .description(
            "Inserts, updates and deletes of the given tables (default: all) that the \
             subscriber may read.",
        )
        .argument(
            InputValue::new("tables", TypeRef::named_nn_list("ChangeTable"))
                .description("Only these tables (default: every table)."),
        )
        .argument(
            InputValue::new("ops", TypeRef::named_nn_list("ChangeOp"))
                .description("Only these operations (default: all three)."),
        )
        .argument(after_argument()),
    );
    builder.register(root)
}

fn after_argument() -> InputValue {
    InputValue::new("after", TypeRef::named(TypeRef::STRING)).description(AFTER_DOC)
}

type EventStream<'a> = futures_util::stream::BoxStream<'a, async_graphql::Result<EventValue>>;

async fn typed_feed<'a>(
    ctx: ResolverContext<'a>,
    feed: &'static TypedFeed,
) -> async_graphql::Result<EventStream<'a>> {
    let table = tables().named(feed.table).map_err(ApiError::into_graphql)?;
    let mut filter = Filter::new([table.index], feed.ops.iter().copied());
    let mut picked = feed.args.is_empty();
    for (name, _, pick) in feed.args {
        if let Some(id) = id_argument(&ctx, name, &type_name(feed.table_for(*pick)))? {
            picked = true;
            filter = match pick {
                Pick::Id => filter.id(id),
                Pick::Key => filter.key(id),
            };
        }
    }
    if !picked {
        let names: Vec<&str> = feed.args.iter().map(|(n, _, _)| *n).collect();
        return Err(ApiError::bad_input(
            names.join(" or "),
            format!("give one of {}", names.join(", ")),
        )
        .into_graphql());
    }
    open(&ctx, filter).await
}

impl TypedFeed {
    /// The table whose ids argument `pick` takes.
    fn table_for(&self, pick: Pick) -> &'static str {
        match (pick, self.table) {
            (Pick::Id, table) => table,
            (Pick::Key, "ai_tasks") => "ai_clones",
            (Pick::Key, "crawl_jobs") => "projects",
            (Pick::Key, "messages") => "conversations",
            (Pick::Key, "results_aggregates") => "experiments",
            (Pick::Key, table) => table,
        }
    }
}

async fn row_changed<'a>(ctx: ResolverContext<'a>) -> async_graphql::Result<EventStream<'a>> {
    let bad =
        |field: &str, e: async_graphql::Error| ApiError::bad_input(field, e.message).into_graphql();
    let tables_wanted: Vec<usize> = match ctx.args.get("tables") {
        Some(list) if !list.is_null() => list
            .list()
            .map_err(|e| bad("tables", e))?
            .iter()
            .map(|v| {
                let name = v.enum_name().map_err(|e| bad("tables", e))?;
                tables()
                    .all
                    .iter()
                    .find(|t| screaming(t.name) == name)
                    .map(|t| t.index)
                    .ok_or_else(|| {
                        ApiError::bad_input("tables", format!("no table {name}")).into_graphql()
                    })
            })
            .collect::<async_graphql::Result<_>>()?,
        _ => tables()
            .all
            .iter()
            .filter(|t| t.spec.is_some_and(|spec| spec.fed))
            .map(|t| t.index)
            .collect(),
    };
    let ops: Vec<Op> = match ctx.args.get("ops") {
        Some(list) if !list.is_null() => list
            .list()
            .map_err(|e| bad("ops", e))?
            .iter()
            .map(|v| {
                let name = v.enum_name().map_err(|e| bad("ops", e))?;
                Op::parse(name).ok_or_else(|| {
                    ApiError::bad_input("ops", format!("no operation {name}")).into_graphql()
                })
            })
            .collect::<async_graphql::Result<_>>()?,
        _ => Op::ALL.to_vec(),
    };
    open(&ctx, Filter::new(tables_wanted, ops)).await
}

/// An id argument: a global id of `type_name`, or a bare uuid.
fn id_argument(
    ctx: &ResolverContext<'_>,
    name: &str,
    type_name: &str,
) -> async_graphql::Result<Option<Uuid>> {
    let Some(value) = ctx.args.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = value
        .string()
        .map_err(|e| ApiError::bad_input(name, e.message).into_graphql())?;
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(Some(id));
    }
    ids::decode_as(name, text, type_name)
        .map(Some)
        .map_err(ApiError::into_graphql)
}

/// Opens the feed for `filter` with the connection's session, from `after` if given.
async fn open<'a>(
    ctx: &ResolverContext<'a>,
    filter: Filter,
) -> async_graphql::Result<EventStream<'a>> {
    let after = match ctx.args.get("after").filter(|v| !v.is_null()) {
        None => None,
        Some(value) => {
            let text = value
                .string()
                .map_err(|e| ApiError::bad_input("after", e.message).into_graphql())?;
            Some(text.parse::<i64>().map_err(|_| {
                ApiError::bad_input("after", format!("{text:?} is not an event cursor"))
                    .into_graphql()
            })?)
        }
    };
    let session = ctx
        .ctx
        .data::<Arc<Session>>()
        .map_err(|_| {
            ApiError::bad_input(
                "subscription",
                "subscriptions are served over WebSocket on /graphql",
            )
            .into_graphql()
        })?
        .clone();
    if session.scope() == Scope::Nobody {
        return Err(ApiError::Unauthenticated(
            "sign in to subscribe: send credentials in connection_init".to_owned(),
        )
        .into_graphql());
    }
    let broker = ctx
        .ctx
        .data::<Broker>()
        .map_err(|_| ApiError::Internal("realtime broker missing".to_owned()).into_graphql())?
        .clone();
    // Boxed, like the replay: only the subscription's start needs this future.
    let (start, feed) = Box::pin(broker.subscribe_at(session, filter, after))
        .await
        .map_err(|e| feed_error(e, after))?;
    // Over a socket: where the subscription has got to, and when to stop (see `resume`).
    let position = ctx.ctx.data_opt::<Arc<Position>>().cloned();
    let closing = ctx.ctx.data_opt::<Closing>().map(Closing::closed);
    if let Some(position) = &position {
        position.set(start);
    }
    let mut last = after;
    let events = feed.map(move |item| match item {
        Ok(delivery) => {
            last = Some(delivery.change.cursor);
            if let Some(position) = &position {
                position.set(delivery.change.cursor);
            }
            Ok(EventValue(delivery))
        }
        Err(error) => Err(feed_error(error, last)),
    });
    Ok(match closing {
        Some(closing) => events.take_until(closing).boxed(),
        None => events.boxed(),
    })
}

/// A feed error as GraphQL reports it: a stable `code`, a `reason`, and `resumeAfter`
/// where resuming is the way on.
fn feed_error(error: FeedError, last: Option<i64>) -> async_graphql::Error {
    let resume = last.map(|c| c.to_string());
    let hint = match &resume {
        Some(cursor) => format!("resubscribe with after: \"{cursor}\""),
        None => "refetch, then resubscribe".to_owned(),
    };
    let (code, reason, message, resume_after) = match error {
        FeedError::Api(error) => return error.into_graphql(),
        FeedError::SlowConsumer => (
            "THROTTLED",
            "SLOW_CONSUMER",
            format!(
                "the subscriber fell more than {SUBSCRIBER_BUFFER} events behind and was dropped; {hint}"
            ),
            resume,
        ),
        FeedError::Missed => (
            "INTERNAL",
            "EVENTS_MISSED",
            format!("the change feed was interrupted and events may have been missed; {hint}"),
            resume,
        ),
        FeedError::CursorExpired(cursor) => (
            "BAD_USER_INPUT",
            "CURSOR_EXPIRED",
            format!(
                "after: cursor {cursor} is older than the retained changes (the last {} minutes): \
                 refetch, then subscribe without after",
                migration::RETENTION_MINUTES
            ),
            None,
        ),
        FeedError::UnknownCursor(cursor) => (
            "BAD_USER_INPUT",
            "UNKNOWN_CURSOR",
            format!(
                "after: cursor {cursor} was not issued by this feed: refetch, then subscribe without after"
            ),
            None,
        ),
        FeedError::Unavailable => (
            "INTERNAL",
            "FEED_UNAVAILABLE",
            format!("the change feed is not available; {hint}"),
            resume,
        ),
    };
    let mut error = async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("reason", reason);
    });
    if matches!(reason, "CURSOR_EXPIRED" | "UNKNOWN_CURSOR") {
        error = error.extend_with(|_, ext| ext.set("field", "after"));
    }
    if let Some(cursor) = resume_after {
        error = error.extend_with(move |_, ext| ext.set("resumeAfter", cursor.clone()));
    }
    error
}

impl From<EventValue> for FieldValue<'_> {
    fn from(event: EventValue) -> Self {
        FieldValue::owned_any(event)
    }
}
