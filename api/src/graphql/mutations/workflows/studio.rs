//! The studio domain's workflows: the AI task queue's workers.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};
use uuid::Uuid;

use super::{Declaration, Input, Returned, declare};
use crate::domains::studio::tasks::{self, Claim, Claimed, Finish, Held};
use crate::error::{ApiError, ApiResult};
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "aiTaskClaim",
            "Claims the highest-priority, oldest task the worker may run and holds it for \
             `leaseSeconds`; `aiTask` is null when there is none. Two workers never hold one task.",
            Right::Work,
            vec![
                InputValue::new("types", TypeRef::named_nn_list(TypeRef::STRING))
                    .description("The task names the worker runs; any when left out."),
                lease_seconds(),
            ],
            |input| {
                Ok(Claim {
                    types: input.strings("types")?,
                    lease: input.lease()?,
                })
            },
            |ctx, claim| Box::pin(tasks::claim(ctx, claim)),
            vec![
                Returned::Row("aiTask", "ai_tasks", |c: &Option<Claimed>| {
                    c.map(|c| c.task)
                }),
                Returned::Value(
                    "leaseId",
                    TypeRef::STRING,
                    "What the worker shows to extend or finish the task (shown only here).",
                    |c| c.map(|c| GqlValue::from(c.lease.to_string())),
                ),
            ],
        ),
        declare(
            "aiTaskHeartbeat",
            "Extends the worker's lease on a task; `LEASE_LOST` when it is no longer the worker's.",
            Right::Work,
            vec![task_id(), lease_id(), lease_seconds()],
            |input| Ok((input.held()?, input.lease()?)),
            |ctx, (held, lease)| Box::pin(tasks::heartbeat(ctx, held, lease)),
            task_row(),
        ),
        declare(
            "aiTaskComplete",
            "Completes a task the worker holds, with its output.",
            Right::Work,
            vec![
                task_id(),
                lease_id(),
                InputValue::new("output", TypeRef::named("JSON"))
                    .description("What the task produced."),
            ],
            |input| {
                let output = input
                    .json("output")?
                    .unwrap_or_else(|| serde_json::json!({}));
                Ok((input.held()?, Finish::Complete(output)))
            },
            |ctx, (held, how)| Box::pin(tasks::finish(ctx, held, how)),
            task_row(),
        ),
        declare(
            "aiTaskFail",
            "Fails a task the worker holds; with `retry`, it goes back to the queue while attempts remain.",
            Right::Work,
            vec![
                task_id(),
                lease_id(),
                InputValue::new("error", TypeRef::named_nn(TypeRef::STRING))
                    .description("What went wrong."),
                InputValue::new("retry", TypeRef::named(TypeRef::BOOLEAN))
                    .description("Try again (default false)."),
            ],
            |input| {
                let error = input
                    .string("error")?
                    .ok_or_else(|| ApiError::bad_input("input.error", "is required"))?;
                let retry = input.boolean("retry")?.unwrap_or(false);
                Ok((input.held()?, Finish::Fail { error, retry }))
            },
            |ctx, (held, how)| Box::pin(tasks::finish(ctx, held, how)),
            task_row(),
        ),
    ]
}

fn task_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row("aiTask", "ai_tasks", |task| Some(*task))]
}

fn task_id() -> InputValue {
    InputValue::new("taskId", TypeRef::named_nn(TypeRef::ID)).description("The task's global id.")
}

fn lease_id() -> InputValue {
    InputValue::new("leaseId", TypeRef::named_nn(TypeRef::STRING))
        .description("The lease `aiTaskClaim` gave.")
}

fn lease_seconds() -> InputValue {
    InputValue::new("leaseSeconds", TypeRef::named(TypeRef::INT))
        .description("How long the worker holds the task: 1 to 3600 seconds, 60 by default.")
}

impl Input<'_> {
    /// `taskId` (a global id of an `AiTask`) and `leaseId`.
    fn held(&self) -> ApiResult<Held> {
        Ok(Held {
            task: self.id("taskId", "AiTask")?,
            lease: self.lease_id()?,
        })
    }
}
