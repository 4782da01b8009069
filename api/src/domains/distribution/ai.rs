//! `aiResponseRecord`: a worker's reading of an inbound message (what it extracted, how
//! sure it is, what it cost). The message is marked processed, the day's
//! `ai_usage_metrics` row of the model grows by one atomic upsert, and the distributor's
//! monthly AI budget is enforced: once the month's cost has reached it, new responses are
//! refused (`BUDGET_EXCEEDED`, nothing written). Crossing the alert threshold (80% by
//! default) and the budget itself each notify the owners once: the distributor's row lock
//! orders concurrent responses, so exactly one of them sees each crossing.

use chrono::{Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Query};
use serde_json::{Value, json};
use uuid::Uuid;

use super::webhooks::{self, Event};
use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::domains::accounts::notifications::{self, Notice, Severity, Topic};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// The `feature` of the usage rows this workflow writes.
const FEATURE: &str = "message_extraction";

/// A checked AI response.
#[derive(Clone, Debug)]
pub struct NewResponse {
    /// The message read (`messages.id`).
    pub message: Uuid,
    /// What was extracted (a JSON object; `items: [{sku, name, quantity}]` for orders).
    pub extracted: Value,
    /// 0 to 1.
    pub confidence: Decimal,
    /// The model, 1 to 100 characters.
    pub model: String,
    /// Tokens in and out.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
    /// What the call cost, >= 0.
    pub cost: Decimal,
}

impl NewResponse {
    /// Checks the parts given as `input.<field>`.
    pub fn parse(
        message: Uuid,
        extracted: Option<Value>,
        confidence: &str,
        model: &str,
        prompt_tokens: i64,
        completion_tokens: i64,
        cost: &str,
    ) -> ApiResult<Self> {
        let extracted = extracted.unwrap_or_else(|| json!({}));
        if !extracted.is_object() {
            return Err(ApiError::bad_input(
                "input.extractedData",
                "must be a JSON object",
            ));
        }
        let decimal = |field: &str, text: &str| -> ApiResult<Decimal> {
            text.trim()
                .parse::<Decimal>()
                .map_err(|_| ApiError::bad_input(field, "must be a decimal number"))
        };
        let confidence = decimal("input.confidence", confidence)?;
        if confidence < Decimal::ZERO || confidence > Decimal::ONE {
            return Err(ApiError::bad_input("input.confidence", "must be 0 to 1"));
        }
        let cost = decimal("input.cost", cost)?;
        if cost < Decimal::ZERO || cost.normalize().scale() > 6 {
            return Err(ApiError::bad_input(
                "input.cost",
                "must be at least 0, with at most six decimals",
            ));
        }
        let model = model.trim();
        if model.is_empty() || model.chars().count() > 100 {
            return Err(ApiError::bad_input(
                "input.model",
                "must be 1 to 100 characters",
            ));
        }
        let tokens = |field: &str, n: i64| -> ApiResult<i32> {
            i32::try_from(n)
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::bad_input(field, "must be 0 or more"))
        };
        Ok(Self {
            message,
            extracted,
            confidence: confidence.round_dp(3),
            model: model.to_owned(),
            prompt_tokens: tokens("input.promptTokens", prompt_tokens)?,
            completion_tokens: tokens("input.completionTokens", completion_tokens)?,
            cost,
        })
    }
}

/// The budget state of a distributor, read under its row lock.
struct Budget {
    monthly: Option<Decimal>,
    alert_at: Decimal,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Records an AI response to a message (`service_role`, the AI worker).
pub async fn record(ctx: &WriteCtx<'_>, input: NewResponse) -> ApiResult<Uuid> {
    if *ctx.principal != Principal::Service {
        return Err(ApiError::Forbidden(
            "AI responses are recorded by the AI worker (service_role)".to_owned(),
        ));
    }
    let messages = tables().named("messages")?;
    let mut find = Query::select();
    find.from(messages.name)
        .columns(["distributor_id", "ai_processed"])
        .and_where(Expr::col("id").eq(input.message))
        .cond_where(ctx.scope.write_condition(messages)?);
    let Some(row) = ctx.db.query_one(&find).await? else {
        return Err(ApiError::refused(
            "input.messageId",
            InputCode::NotFound,
            "no such message",
        ));
    };
    let distributor: Uuid = row.try_get_by_index(0)?;
    let processed: bool = row.try_get_by_index(1)?;
    let budget = lock_budget(ctx, distributor).await?;
    if processed {
        return Err(ApiError::refused(
            "input.messageId",
            InputCode::InvalidTransition,
            "the message already has its AI response",
        ));
    }
    let today = Utc::now().date_naive();
    let spent = month_cost(ctx, distributor, today).await?;
    if let Some(monthly) = budget.monthly
        && spent >= monthly
    {
        return Err(ApiError::refused(
            "input.cost",
            InputCode::BudgetExceeded,
            format!("the monthly AI budget of {monthly} is spent ({spent})"),
        ));
    }
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("ai_responses")
        .columns([
            "id",
            "message_id",
            "model",
            "extracted_data",
            "confidence",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "distributor_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(input.message),
            Expr::val(input.model.as_str()),
            Expr::val(input.extracted.clone()),
            Expr::val(input.confidence),
            Expr::val(input.prompt_tokens),
            Expr::val(input.completion_tokens),
            Expr::val(input.cost),
            Expr::val(distributor),
        ])
        .map_err(internal)?;
    ctx.db.execute(&insert).await?;
    let mut processed = Query::update();
    processed
        .table("messages")
        .value("ai_processed", true)
        .and_where(Expr::col("id").eq(input.message));
    ctx.db.execute(&processed).await?;
    add_usage(ctx, distributor, today, &input).await?;
    ctx.outbox
        .record(Write::insert("ai_responses", id, Some(distributor)));
    ctx.outbox
        .record(Write::update("messages", input.message, Some(distributor)));
    if let Some(monthly) = budget.monthly {
        let after = spent + input.cost;
        for (share, title) in [
            (budget.alert_at, "AI budget almost spent"),
            (Decimal::ONE, "AI budget spent"),
        ] {
            let line = monthly * share;
            if spent < line && after >= line {
                tell_owners(ctx, distributor, title, share, monthly, after).await?;
                let data = json!({ "threshold": share, "budget": monthly, "spent": after });
                webhooks::emit(ctx, distributor, Event::BudgetExceeded, data).await?;
            }
        }
    }
    Ok(id)
}

/// Locks the distributor's row (orders concurrent responses) and reads its budget.
async fn lock_budget(ctx: &WriteCtx<'_>, distributor: Uuid) -> ApiResult<Budget> {
    let mut select = Query::select();
    select
        .from("distributors")
        .columns(["ai_monthly_budget", "ai_budget_alert_threshold"])
        .and_where(Expr::col("id").eq(distributor))
        .lock(LockType::Update);
    let row = ctx
        .db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::NotFound("distributor".to_owned()))?;
    Ok(Budget {
        monthly: row.try_get_by_index(0)?,
        alert_at: row.try_get_by_index(1)?,
    })
}

/// The distributor's AI cost so far in `today`'s month.
async fn month_cost(ctx: &WriteCtx<'_>, distributor: Uuid, today: NaiveDate) -> ApiResult<Decimal> {
    let first = today.with_day(1).unwrap_or(today);
    // As text on both backends: SQLite sums stored decimals into a float, PostgreSQL
    // into numeric; the text of either parses.
    let mut sum = Query::select();
    sum.from("ai_usage_metrics")
        .expr(Expr::cust("CAST(COALESCE(SUM(cost), 0) AS TEXT)"))
        .and_where(Expr::col("distributor_id").eq(distributor))
        .and_where(Expr::col("date").gte(first));
    let row = ctx
        .db
        .query_one(&sum)
        .await?
        .ok_or_else(|| ApiError::Internal("no sum".to_owned()))?;
    let text: String = row.try_get_by_index(0)?;
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map(|d| d.round_dp(6))
        .map_err(|_| ApiError::Internal(format!("AI cost sum {text} is not a decimal")))
}

/// Adds the response to the day's usage row of its model.
async fn add_usage(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    today: NaiveDate,
    input: &NewResponse,
) -> ApiResult<()> {
    let added = |column: &str| {
        Expr::col(("ai_usage_metrics", column.to_owned()))
            .add(Expr::col(("excluded", column.to_owned())))
    };
    let mut upsert = Query::insert();
    upsert
        .into_table("ai_usage_metrics")
        .columns([
            "id",
            "date",
            "model",
            "feature",
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "distributor_id",
        ])
        .values([
            Expr::val(Uuid::new_v4()),
            Expr::val(today),
            Expr::val(input.model.as_str()),
            Expr::val(FEATURE),
            Expr::val(1),
            Expr::val(i64::from(input.prompt_tokens)),
            Expr::val(i64::from(input.completion_tokens)),
            Expr::val(input.cost),
            Expr::val(distributor),
        ])
        .map_err(internal)?
        .on_conflict(
            OnConflict::columns(["distributor_id", "date", "model", "feature"])
                .values([
                    ("requests", added("requests")),
                    ("prompt_tokens", added("prompt_tokens")),
                    ("completion_tokens", added("completion_tokens")),
                    ("cost", added("cost")),
                ])
                .to_owned(),
        );
    ctx.db.execute(&upsert).await?;
    Ok(())
}

/// Notifies every owner of the distributor that the month's AI cost crossed `share` of
/// the budget.
async fn tell_owners(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    title: &str,
    share: Decimal,
    monthly: Decimal,
    spent: Decimal,
) -> ApiResult<()> {
    let mut owners = Query::select();
    owners
        .from("user_profiles")
        .column("user_id")
        .and_where(Expr::col("distributor_id").eq(distributor))
        .and_where(Expr::col("role").eq("owner"));
    for row in ctx.db.query_all(&owners).await? {
        let user: Uuid = row.try_get_by_index(0)?;
        notifications::notify(
            ctx,
            Notice {
                user,
                topic: Topic::Billing,
                severity: Severity::Warning,
                title: title.to_owned(),
                body: format!(
                    "This month's AI cost is {spent} of a {monthly} budget ({}%).",
                    (share * Decimal::from(100)).normalize()
                ),
                data: json!({
                    "distributor_id": distributor,
                    "threshold": share,
                    "budget": monthly,
                    "spent": spent,
                }),
            },
        )
        .await?;
    }
    Ok(())
}
