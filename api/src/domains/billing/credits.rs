//! Moving credits. A balance changes only together with its ledger row, in the request's
//! transaction, and never below zero whatever runs at the same time: the account is read
//! under a row lock (PostgreSQL; on SQLite a writing request holds the database's write
//! lock), the ledger row is written with the balance it leaves, then the balance moves.
//! The database refuses a balance that differs from the sum of its ledger (migration
//! 000014), so the order is the only one that works.

use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, Value};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::domains::accounts::activity::{self, Change};
use crate::domains::accounts::notifications::{self, Notice, Severity, Topic};
use crate::domains::accounts::usage::{self, Metric};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// Below this balance, a spend tells the user that credits are running low (once, as the
/// balance crosses it).
pub const LOW_BALANCE: i32 = 10;

/// The most credits one operation moves.
pub const MAX_AMOUNT: i64 = 1_000_000;

/// A positive number of credits, at most [`MAX_AMOUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(i32);

impl Amount {
    /// Checks `value`, given as input `field`.
    pub fn parse(field: &str, value: i64) -> ApiResult<Self> {
        if !(1..=MAX_AMOUNT).contains(&value) {
            return Err(ApiError::bad_input(
                field,
                format!("must be a whole number of credits from 1 to {MAX_AMOUNT}"),
            ));
        }
        i32::try_from(value)
            .map(Self)
            .map_err(|_| ApiError::bad_input(field, "is too large"))
    }

    /// The number of credits.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// What a ledger row says it was for (at most 255 characters), e.g. a job or an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    /// Checks `value`, given as input `field`.
    pub fn parse(field: &str, value: &str) -> ApiResult<Self> {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > 255 {
            return Err(ApiError::bad_input(field, "must be 1 to 255 characters"));
        }
        Ok(Self(value.to_owned()))
    }
}

/// Spending the signed-in user's credits.
#[derive(Clone, Debug)]
pub struct Spend {
    /// How many.
    pub amount: Amount,
    /// What for.
    pub reference: Option<Reference>,
}

/// Granting credits to a user (`service_role`).
#[derive(Clone, Debug)]
pub struct Grant {
    /// The user (`users.id`).
    pub user: Uuid,
    /// How many.
    pub amount: Amount,
    /// What for.
    pub reference: Option<Reference>,
}

/// The account and ledger row a move made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// `credit_accounts.id`.
    pub account: Uuid,
    /// `credit_transactions.id`.
    pub transaction: Uuid,
    /// The balance after the move.
    pub balance: i32,
}

/// What a ledger row records: the direction of the move, its `kind` as stored, and the
/// lifetime counter it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Credits the service gives (`adjustment`).
    Grant,
    /// Credits a completed payment bought (`purchase`; once per order).
    Purchase,
    /// Credits the user spends (`usage`).
    Spend,
    /// Credits held for a crawl job when it is made (`reservation`).
    Reserve,
    /// Held credits a job did not use, given back (`release`).
    Release,
    /// Credits a refunded payment takes back (`refund`).
    Refund,
}

impl Entry {
    /// The ledger's `kind`.
    fn kind(self) -> &'static str {
        match self {
            Self::Grant => "adjustment",
            Self::Purchase => "purchase",
            Self::Spend => "usage",
            Self::Reserve => "reservation",
            Self::Release => "release",
            Self::Refund => "refund",
        }
    }

    /// Whether the move adds credits to the balance.
    fn adds(self) -> bool {
        matches!(self, Self::Grant | Self::Purchase | Self::Release)
    }

    /// The lifetime counter the move changes, and whether it grows: a release undoes part
    /// of a reservation, a refund part of a purchase.
    fn lifetime(self) -> (&'static str, bool) {
        match self {
            Self::Grant | Self::Purchase => ("lifetime_earned", true),
            Self::Spend | Self::Reserve => ("lifetime_spent", true),
            Self::Release => ("lifetime_spent", false),
            Self::Refund => ("lifetime_earned", false),
        }
    }

    /// The activity log's action.
    fn action(self) -> &'static str {
        match self {
            Self::Grant => "credits.granted",
            Self::Purchase => "credits.purchased",
            Self::Spend => "credits.spent",
            Self::Reserve => "credits.reserved",
            Self::Release => "credits.released",
            Self::Refund => "credits.refunded",
        }
    }
}

/// Spends credits of the signed-in user; a short balance is `INSUFFICIENT_CREDITS` and
/// changes nothing.
pub async fn spend(ctx: &WriteCtx<'_>, input: Spend) -> ApiResult<Moved> {
    let Principal::User { id, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "only a signed-in user spends credits".to_owned(),
        ));
    };
    post(ctx, *id, Entry::Spend, input.amount, input.reference).await
}

/// Grants credits to a user: `service_role` only.
pub async fn grant(ctx: &WriteCtx<'_>, input: Grant) -> ApiResult<Moved> {
    if *ctx.principal != Principal::Service {
        return Err(ApiError::Forbidden(
            "only service_role grants credits".to_owned(),
        ));
    }
    post(ctx, input.user, Entry::Grant, input.amount, input.reference).await
}

/// Moves `amount` credits of `user`'s account as `entry` says and writes the ledger row.
/// Who may is the caller's to decide: the other domains' workflows (payments, crawl jobs)
/// move credits as part of their own changes. A move that would leave the balance below
/// zero is `INSUFFICIENT_CREDITS`.
pub async fn post(
    ctx: &WriteCtx<'_>,
    user: Uuid,
    entry: Entry,
    amount: Amount,
    reference: Option<Reference>,
) -> ApiResult<Moved> {
    let delta = if entry.adds() {
        amount.get()
    } else {
        -amount.get()
    };
    let kind = entry.kind();
    let accounts = tables().named("credit_accounts")?;
    let (lifetime, grows) = entry.lifetime();
    let lifetime_delta = if grows { amount.get() } else { -amount.get() };
    let mut select = Query::select();
    select
        .from(accounts.name)
        .columns(["id", "balance"])
        .and_where(Expr::col("user_id").eq(user))
        .cond_where(ctx.scope.write_condition(accounts)?)
        .lock(LockType::Update);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("credit account".to_owned()));
    };
    let account: Uuid = row.try_get_by_index(0)?;
    let before: i32 = row.try_get_by_index(1)?;
    let balance = before + delta;
    if balance < 0 {
        return Err(ApiError::Refused {
            field: "input.amount".to_owned(),
            code: InputCode::InsufficientCredits,
            message: format!("the balance is {before} credits"),
        });
    }
    let transaction = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("credit_transactions")
        .columns([
            "id",
            "credit_account_id",
            "amount",
            "balance_after",
            "kind",
            "reference",
            "user_id",
        ])
        .values([
            Expr::val(transaction),
            Expr::val(account),
            Expr::val(delta),
            Expr::val(balance),
            Expr::val(kind.to_owned()),
            Expr::val(Value::String(reference.map(|r| r.0))),
            Expr::val(user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Err(error) = ctx.db.execute(&insert).await {
        let ledger = tables().named("credit_transactions")?;
        return Err(match crate::store::violation::classify(&error, ledger) {
            Some(v) if v.code == InputCode::Taken => {
                ApiError::Conflict("this reference was already used".to_owned())
            }
            _ => error.into(),
        });
    }
    let mut update = Query::update();
    update
        .table(accounts.name)
        .value("balance", balance)
        .value(lifetime, Expr::col(lifetime).add(lifetime_delta))
        .and_where(Expr::col("id").eq(account));
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update("credit_accounts", account, Some(user)));
    ctx.outbox.record(Write::insert(
        "credit_transactions",
        transaction,
        Some(user),
    ));
    let details = json!({ "amount": delta, "transaction": transaction, "kind": kind });
    activity::record(
        ctx,
        Change {
            user,
            entity_type: "credit_account",
            entity: account,
            action: entry.action(),
            from: json!({ "balance": before }),
            to: json!({ "balance": balance }),
            details: Some(&details),
        },
    )
    .await?;
    if entry == Entry::Spend {
        usage::increment(ctx, user, Metric::CreditsSpent, i64::from(-delta)).await?;
    }
    if before >= LOW_BALANCE && balance < LOW_BALANCE {
        let notice = Notice {
            user,
            topic: Topic::Billing,
            severity: Severity::Warning,
            title: "Credits are running low".to_owned(),
            body: format!("{balance} credits left."),
            data: json!({ "balance": balance }),
        };
        notifications::notify(ctx, notice).await?;
    }
    tracing::info!(user.id = %user, delta, balance, "moved {delta} credits");
    Ok(Moved {
        account,
        transaction,
        balance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_positive_and_bounded() {
        assert_eq!(Amount::parse("amount", 3).unwrap().get(), 3);
        assert!(Amount::parse("amount", 0).is_err());
        assert!(Amount::parse("amount", -5).is_err());
        assert!(Amount::parse("amount", MAX_AMOUNT + 1).is_err());
    }

    #[test]
    fn references_are_trimmed_and_bounded() {
        assert_eq!(Reference::parse("r", " job-1 ").unwrap().0, "job-1");
        assert!(Reference::parse("r", "  ").is_err());
        assert!(Reference::parse("r", &"x".repeat(256)).is_err());
    }
}
