//! The experiments domain's workflows: experiment states, recommendations, patches.

use async_graphql::dynamic::{InputValue, TypeRef};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{Declaration, Returned, declare};
use crate::domains::WriteCtx;
use crate::domains::experiments::assignments::{self, Assignment, Visitor};
use crate::domains::experiments::lifecycle::{self, Status};
use crate::domains::experiments::patches::{self, Decision, NewPatch};
use crate::domains::experiments::results;
use crate::error::ApiResult;
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        advance(
            "experimentStart",
            "Starts (or resumes) an experiment: its allocation must cover exactly its \
             variants, with a `control`, shares summing to 1.",
            |ctx, id| Box::pin(lifecycle::advance(ctx, id, Status::Running)),
        ),
        advance(
            "experimentPause",
            "Pauses a running experiment; its assignments stay.",
            |ctx, id| Box::pin(lifecycle::advance(ctx, id, Status::Paused)),
        ),
        advance(
            "experimentComplete",
            "Ends a running or paused experiment.",
            |ctx, id| Box::pin(lifecycle::advance(ctx, id, Status::Completed)),
        ),
        advance(
            "experimentArchive",
            "Archives a draft or completed experiment.",
            |ctx, id| Box::pin(lifecycle::advance(ctx, id, Status::Archived)),
        ),
        declare(
            "experimentResultsRefresh",
            "Recomputes each variant's Beta-Binomial posterior (prior Beta(1, 1)) from its \
             overall results: mean, 95% credible interval, probability to beat the control, \
             expected loss. Running experiments are also refreshed in the background.",
            Right::Write,
            vec![id_of("experiment")],
            |input| input.id("id", "Experiment"),
            |ctx, id| Box::pin(results::refresh(ctx, id)),
            vec![Returned::Value(
                "changed",
                TypeRef::INT,
                "How many variants' posteriors changed.",
                |n: &u64| Some(async_graphql::Value::from(*n)),
            )],
        ),
        declare(
            "experimentAssign",
            "Puts a storefront visitor in a variant of the shop's running experiment (the \
             shop's ingest key in `X-Stratix-Ingest-Key`, or the shop itself): decided by a \
             hash of the experiment and the visitor's id over the allocation, recorded once, \
             and the same on every later call. A paused or ended experiment is refused \
             (`INVALID_TRANSITION`).",
            Right::Storefront,
            vec![
                InputValue::new("experimentId", TypeRef::named_nn(TypeRef::ID))
                    .description("The experiment's global id."),
                InputValue::new("anonId", TypeRef::named_nn(TypeRef::STRING))
                    .description("The anonymous visitor's id, 1 to 128 characters."),
                InputValue::new("sessionId", TypeRef::named(TypeRef::STRING))
                    .description("The visitor's session, if the storefront has one."),
            ],
            |input| {
                Visitor::parse(
                    input.id("experimentId", "Experiment")?,
                    &input.string("anonId")?.unwrap_or_default(),
                    input.string("sessionId")?.as_deref(),
                )
            },
            |ctx, visitor| Box::pin(assignments::assign(ctx, visitor)),
            vec![
                Returned::Value(
                    "variant",
                    TypeRef::STRING,
                    "The visitor's variant.",
                    |a: &Assignment| Some(async_graphql::Value::from(a.variant.clone())),
                ),
                Returned::Value(
                    "config",
                    "JSON",
                    "The variant's settings (its entry in the experiment's `variants`).",
                    |a: &Assignment| async_graphql::Value::from_json(a.config.clone()).ok(),
                ),
            ],
        ),
        decide(
            "recommendationAccept",
            "Accepts a pending recommendation.",
            Decision::Accept,
        ),
        decide(
            "recommendationDismiss",
            "Dismisses a pending recommendation.",
            Decision::Dismiss,
        ),
        declare(
            "recommendationApply",
            "Applies an accepted recommendation: its patch payload becomes the next patch of \
             its entity, and the recommendation is `applied`.",
            Right::Write,
            vec![id_of("recommendation")],
            |input| input.id("id", "Recommendation"),
            |ctx, id| Box::pin(patches::apply_recommendation(ctx, id)),
            patch_row(),
        ),
        declare(
            "patchApply",
            "Applies a patch to a target: version = the target's last + 1.",
            Right::Write,
            vec![
                InputValue::new("appliedTo", TypeRef::named_nn(TypeRef::STRING))
                    .description("The target, e.g. `product:123:title`."),
                InputValue::new("payload", TypeRef::named_nn("JSON"))
                    .description("The change, an object."),
                InputValue::new("rollbackPayload", TypeRef::named("JSON"))
                    .description("What undoes it, an object."),
                InputValue::new("shopId", TypeRef::named("UUID"))
                    .description("The shop (`service_role` only; a shop patches its own)."),
            ],
            |input| {
                let payload = input.json("payload")?.unwrap_or_default();
                let patch = NewPatch::parse(
                    &input.string("appliedTo")?.unwrap_or_default(),
                    payload,
                    input.json("rollbackPayload")?,
                )?;
                let shop = match input.get("shopId") {
                    None => None,
                    Some(_) => Some(input.uuid("shopId")?),
                };
                Ok((patch, shop))
            },
            |ctx, patch| Box::pin(patches::apply(ctx, patch)),
            patch_row(),
        ),
        declare(
            "patchRollback",
            "Rolls back the latest patch of its target with a new patch restoring what it \
             replaced; the rolled-back patch is marked, never deleted. Any other patch is \
             `INVALID_TRANSITION`.",
            Right::Write,
            vec![id_of("patch")],
            |input| input.id("id", "Patch"),
            |ctx, id| Box::pin(patches::roll_back(ctx, id)),
            patch_row(),
        ),
    ]
}

/// A workflow that moves an experiment on (`work`: to which state).
fn advance(
    name: &'static str,
    doc: &'static str,
    work: for<'a> fn(&'a WriteCtx<'a>, Uuid) -> BoxFuture<'a, ApiResult<Uuid>>,
) -> Declaration {
    declare(
        name,
        doc,
        Right::Write,
        vec![id_of("experiment")],
        |input| input.id("id", "Experiment"),
        work,
        vec![Returned::Row("experiment", "experiments", |id: &Uuid| {
            Some(*id)
        })],
    )
}

fn decide(name: &'static str, doc: &'static str, decision: Decision) -> Declaration {
    let parse: fn(&super::Input<'_>) -> ApiResult<(Uuid, Decision)> = match decision {
        Decision::Accept => |input| Ok((input.id("id", "Recommendation")?, Decision::Accept)),
        Decision::Dismiss => |input| Ok((input.id("id", "Recommendation")?, Decision::Dismiss)),
    };
    declare(
        name,
        doc,
        Right::Write,
        vec![id_of("recommendation")],
        parse,
        |ctx, decided| Box::pin(patches::decide(ctx, decided)),
        vec![Returned::Row(
            "recommendation",
            "recommendations",
            |id: &Uuid| Some(*id),
        )],
    )
}

fn id_of(what: &str) -> InputValue {
    InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
        .description(format!("The {what}'s global id."))
}

fn patch_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row("patch", "patches", |id| Some(*id))]
}
