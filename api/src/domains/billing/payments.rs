//! Payments (seed 002): a user opens a payment for a checkout order; the provider's side
//! (`service_role`, or its signed callback, `crate::webhooks`) moves it through
//! `created` -> `approved` -> `completed` | `failed`, and `completed` -> `refunded`
//! ([`Status::may_become`]). Completing grants the credits the payment buys in the same
//! transaction, once: asking for the state a payment is already in changes nothing, so a
//! retried callback is harmless. A refund takes the credits back, or is refused
//! (`INSUFFICIENT_CREDITS`) when they are already spent.

use chrono::Utc;
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, Value};
use serde_json::json;
use uuid::Uuid;

use super::credits::{self, Amount, Entry, Reference};
use crate::auth::Principal;
use crate::domains::accounts::activity::{self, Change};
use crate::domains::accounts::notifications::{self, Notice, Severity, Topic};
use crate::domains::{WriteCtx, invalid_transition};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::store::violation;
use crate::tables::tables;

/// A payment's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Opened, waiting for the buyer.
    Created,
    /// Seed 002's waiting state; moves like `created`.
    Pending,
    /// The buyer approved it; the provider has yet to capture it.
    Approved,
    /// Captured: the credits are granted.
    Completed,
    /// The provider refused it.
    Failed,
    /// Paid back: the credits are taken back.
    Refunded,
    /// Given up before approval.
    Cancelled,
}

impl Status {
    /// Every state.
    pub const ALL: [Self; 7] = [
        Self::Created,
        Self::Pending,
        Self::Approved,
        Self::Completed,
        Self::Failed,
        Self::Refunded,
        Self::Cancelled,
    ];

    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a payment in this state may move to `next`.
    pub fn may_become(self, next: Self) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Created | Pending, Approved | Failed | Cancelled)
                | (Approved, Completed | Failed)
                | (Completed, Refunded)
        )
    }
}

/// The most a single payment may be.
const MAX_AMOUNT: i64 = 99_999_999;

/// An amount of money: more than zero, at most two decimals, fits `numeric(10, 2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money(Decimal);

impl Money {
    /// Checks `value` (a decimal's text), given as input `field`.
    pub fn parse(field: &str, value: &str) -> ApiResult<Self> {
        let amount: Decimal = value
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_input(field, "must be a decimal number, like \"12.50\""))?;
        if amount <= Decimal::ZERO || amount > Decimal::from(MAX_AMOUNT) {
            return Err(ApiError::bad_input(
                field,
                format!("must be more than 0 and at most {MAX_AMOUNT}"),
            ));
        }
        if amount.normalize().scale() > 2 {
            return Err(ApiError::bad_input(field, "must have at most two decimals"));
        }
        Ok(Self(amount))
    }
}

/// The active ISO 4217 currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
    BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN \
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD \
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT \
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR \
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND \
    TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// An ISO 4217 currency code, like `USD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Checks `value`, given as input `field`.
    pub fn parse(field: &str, value: &str) -> ApiResult<Self> {
        let code = value.trim().to_ascii_uppercase();
        match <[u8; 3]>::try_from(code.as_bytes()) {
            Ok(bytes) if CURRENCIES.split_whitespace().any(|c| c == code) => Ok(Self(bytes)),
            _ => Err(ApiError::bad_input(
                field,
                "must be an ISO 4217 currency code, like USD or EUR",
            )),
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("USD")
    }
}

/// A checked bit of text for a column of `max` characters.
fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ApiError::bad_input(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A new payment of the signed-in user.
#[derive(Clone, Debug)]
pub struct NewPayment {
    /// The provider's order id: unique across payments.
    pub order_id: String,
    /// How much.
    pub amount: Money,
    /// In which currency.
    pub currency: Currency,
    /// What for.
    pub description: Option<String>,
    /// The provider (`paypal` by default).
    pub method: Option<String>,
    /// The credits the payment buys, granted when it completes.
    pub credits: Option<Amount>,
}

impl NewPayment {
    /// Checks the parts of a new payment given as `input.<field>`.
    pub fn parse(
        order_id: &str,
        amount: &str,
        currency: Option<&str>,
        description: Option<&str>,
        method: Option<&str>,
        credits: Option<i64>,
    ) -> ApiResult<Self> {
        Ok(Self {
            order_id: text("input.orderId", order_id, 255)?,
            amount: Money::parse("input.amount", amount)?,
            currency: Currency::parse("input.currency", currency.unwrap_or("USD"))?,
            description: description
                .map(|d| text("input.description", d, 2000))
                .transpose()?,
            method: method
                .map(|m| text("input.paymentMethod", m, 50))
                .transpose()?,
            credits: credits
                .map(|c| Amount::parse("input.credits", c))
                .transpose()?,
        })
    }
}

/// Which payment: by id, or by the provider's order id (its callbacks know only that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentRef {
    /// `payments.id`.
    Id(Uuid),
    /// `payments.order_id`.
    Order(String),
}

/// Opens a payment for the signed-in user, `created`.
pub async fn create(ctx: &WriteCtx<'_>, input: NewPayment) -> ApiResult<Uuid> {
    let Principal::User { id: user, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "a payment is opened by a signed-in user".to_owned(),
        ));
    };
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("payments")
        .columns([
            "id",
            "order_id",
            "amount",
            "currency",
            "status",
            "description",
            "payment_method",
            "credits_granted",
            "user_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(input.order_id),
            Expr::val(input.amount.0),
            Expr::val(input.currency.as_str().to_owned()),
            Expr::val(Status::Created.as_str()),
            Expr::val(Value::String(input.description)),
            Expr::val(input.method.unwrap_or_else(|| "paypal".to_owned())),
            Expr::val(Value::Int(input.credits.map(Amount::get))),
            Expr::val(*user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Err(error) = ctx.db.execute(&insert).await {
        return Err(
            match violation::classify(&error, tables().named("payments")?) {
                Some(v) if v.code == InputCode::Taken => ApiError::refused(
                    "input.orderId",
                    InputCode::Taken,
                    "another payment has this order id",
                ),
                _ => error.into(),
            },
        );
    }
    ctx.outbox
        .record(Write::insert("payments", id, Some(*user)));
    activity::record(
        ctx,
        Change {
            user: *user,
            entity_type: "payment",
            entity: id,
            action: "payment.created",
            from: json!(null),
            to: json!({ "status": Status::Created.as_str() }),
            details: None,
        },
    )
    .await?;
    Ok(id)
}

/// Moves a payment to `next` (`service_role`: the provider's side). The state it is
/// already in is a no-op; any other move [`Status::may_become`] refuses is
/// `INVALID_TRANSITION`.
pub async fn advance(ctx: &WriteCtx<'_>, payment: PaymentRef, next: Status) -> ApiResult<Uuid> {
    if *ctx.principal != Principal::Service {
        return Err(ApiError::Forbidden(
            "payments are completed by the provider (service_role)".to_owned(),
        ));
    }
    let table = tables().named("payments")?;
    let mut select = Query::select();
    select
        .from(table.name)
        .columns(["id", "status", "user_id", "credits_granted", "order_id"])
        .cond_where(ctx.scope.write_condition(table)?)
        .lock(LockType::Update);
    match &payment {
        PaymentRef::Id(id) => select.and_where(Expr::col("id").eq(*id)),
        PaymentRef::Order(order) => select.and_where(Expr::col("order_id").eq(order.as_str())),
    };
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("payment".to_owned()));
    };
    let id: Uuid = row.try_get_by_index(0)?;
    let stored: String = row.try_get_by_index(1)?;
    let user: Option<Uuid> = row.try_get_by_index(2)?;
    let credits: Option<i32> = row.try_get_by_index(3)?;
    let order: String = row.try_get_by_index(4)?;
    let before = Status::parse(&stored)
        .ok_or_else(|| ApiError::Internal(format!("payment {id} has status {stored}")))?;
    if before == next {
        return Ok(id);
    }
    if !before.may_become(next) {
        let to = format!("become {}", next.as_str());
        return Err(invalid_transition("payment", before.as_str(), &to));
    }
    let mut update = Query::update();
    update
        .table(table.name)
        .value("status", next.as_str())
        .and_where(Expr::col("id").eq(id));
    if next == Status::Completed {
        update.value("completed_at", Utc::now());
    }
    ctx.db.execute(&update).await?;
    ctx.outbox.record(Write::update("payments", id, user));
    let Some(user) = user else {
        // The buyer's account is gone: nothing to grant or take back, nobody to tell.
        return Ok(id);
    };
    let bought = credits
        .filter(|c| *c > 0)
        .map(|c| Amount::parse("credits", c.into()));
    let reference = Some(Reference::parse("reference", &order)?);
    match (next, bought) {
        (Status::Completed, Some(amount)) => {
            credits::post(ctx, user, Entry::Purchase, amount?, reference).await?;
        }
        (Status::Refunded, Some(amount)) => {
            credits::post(ctx, user, Entry::Refund, amount?, reference)
                .await
                .map_err(|e| e.at("input.id"))?;
        }
        _ => {}
    }
    activity::record(
        ctx,
        Change {
            user,
            entity_type: "payment",
            entity: id,
            action: match next {
                Status::Approved => "payment.approved",
                Status::Completed => "payment.completed",
                Status::Failed => "payment.failed",
                Status::Refunded => "payment.refunded",
                _ => "payment.cancelled",
            },
            from: json!({ "status": before.as_str() }),
            to: json!({ "status": next.as_str() }),
            details: Some(&json!({ "orderId": order, "credits": credits })),
        },
    )
    .await?;
    let told = match next {
        Status::Completed => Some((Severity::Success, "Payment completed")),
        Status::Failed => Some((Severity::Error, "Payment failed")),
        Status::Refunded => Some((Severity::Warning, "Payment refunded")),
        _ => None,
    };
    if let Some((severity, title)) = told {
        let notice = Notice {
            user,
            topic: Topic::Billing,
            severity,
            title: title.to_owned(),
            body: format!("Order {order} is {}.", next.as_str()),
            data: json!({ "paymentId": crate::graphql::ids::encode("Payment", id) }),
        };
        notifications::notify(ctx, notice).await?;
    }
    tracing::info!(payment.id = %id, from = before.as_str(), to = next.as_str(), "payment moved");
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_is_created_approved_completed_refunded() {
        use Status::*;
        let allowed: Vec<(Status, Status)> = Status::ALL
            .into_iter()
            .flat_map(|a| Status::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.may_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Created, Approved),
                (Created, Failed),
                (Created, Cancelled),
                (Pending, Approved),
                (Pending, Failed),
                (Pending, Cancelled),
                (Approved, Completed),
                (Approved, Failed),
                (Completed, Refunded),
            ]
        );
    }

    #[test]
    fn money_is_positive_with_two_decimals() {
        assert!(Money::parse("a", "12.50").is_ok());
        assert!(Money::parse("a", "12.500").is_ok());
        assert!(Money::parse("a", "12.505").is_err());
        assert!(Money::parse("a", "0").is_err());
        assert!(Money::parse("a", "-1").is_err());
        assert!(Money::parse("a", "ten").is_err());
        assert!(Money::parse("a", "100000000").is_err());
    }

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert_eq!(Currency::parse("c", "eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("c", "EURO").is_err());
        assert!(Currency::parse("c", "XXY").is_err());
        assert!(Currency::parse("c", "").is_err());
    }
}
