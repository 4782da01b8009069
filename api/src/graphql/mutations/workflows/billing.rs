//! The billing domain's workflows: credits and payments.

use async_graphql::dynamic::{InputValue, TypeRef};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{Declaration, Input, Returned, declare, int, text};
use crate::domains::WriteCtx;
use crate::domains::billing::credits::{self, Amount, Grant, Moved, Reference, Spend};
use crate::domains::billing::payments::{self, NewPayment, PaymentRef, Status};
use crate::error::{ApiError, ApiResult};
use crate::graphql::ids;
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "creditsSpend",
            "Spends the signed-in user's credits: the balance and its ledger row change together; \
             a short balance is `INSUFFICIENT_CREDITS` and changes nothing.",
            Right::Write,
            vec![
                int("amount", "Credits to spend, 1 to 1,000,000."),
                text(
                    "reference",
                    "What they pay for (a job, an order), at most 255 characters.",
                ),
            ],
            |input| {
                Ok(Spend {
                    amount: Amount::parse("input.amount", input.int("amount")?)?,
                    reference: input.reference()?,
                })
            },
            |ctx, spend| Box::pin(credits::spend(ctx, spend)),
            moved_rows(),
        ),
        declare(
            "creditsGrant",
            "Grants credits to a user (`service_role`).",
            Right::Write,
            vec![
                InputValue::new("userId", TypeRef::named_nn("UUID")).description("The user."),
                int("amount", "Credits to grant, 1 to 1,000,000."),
                text("reference", "What for, at most 255 characters."),
            ],
            |input| {
                Ok(Grant {
                    user: input.uuid("userId")?,
                    amount: Amount::parse("input.amount", input.int("amount")?)?,
                    reference: input.reference()?,
                })
            },
            |ctx, grant| Box::pin(credits::grant(ctx, grant)),
            moved_rows(),
        ),
        declare(
            "paymentCreate",
            "Opens a payment of the signed-in user for a checkout order, `created`; the \
             provider's side moves it on (`paymentApprove`, `paymentComplete`, or its signed \
             callback to `POST /webhooks/payments`).",
            Right::Write,
            vec![
                InputValue::new("orderId", TypeRef::named_nn(TypeRef::STRING))
                    .description("The provider's order id, unique, at most 255 characters."),
                InputValue::new("amount", TypeRef::named_nn("Decimal"))
                    .description("More than 0, at most two decimals."),
                text("currency", "An ISO 4217 code, `USD` by default."),
                text("description", "What is bought."),
                text("paymentMethod", "The provider, `paypal` by default."),
                InputValue::new("credits", TypeRef::named(TypeRef::INT))
                    .description("Credits the payment buys, granted when it completes."),
            ],
            |input| {
                let order = input.string("orderId")?.unwrap_or_default();
                let amount = input.decimal_text("amount")?;
                let credits = match input.get("credits") {
                    None => None,
                    Some(_) => Some(input.int("credits")?),
                };
                NewPayment::parse(
                    &order,
                    &amount,
                    input.string("currency")?.as_deref(),
                    input.string("description")?.as_deref(),
                    input.string("paymentMethod")?.as_deref(),
                    credits,
                )
            },
            |ctx, payment| Box::pin(payments::create(ctx, payment)),
            payment_row(),
        ),
        advance(
            "paymentApprove",
            "Marks a payment approved by the buyer (`service_role`).",
            |ctx, payment| Box::pin(payments::advance(ctx, payment, Status::Approved)),
        ),
        advance(
            "paymentComplete",
            "Completes an approved payment (`service_role`) and grants the credits it buys, \
             in one transaction; completing a completed payment changes nothing.",
            |ctx, payment| Box::pin(payments::advance(ctx, payment, Status::Completed)),
        ),
        advance(
            "paymentFail",
            "Marks a payment failed (`service_role`).",
            |ctx, payment| Box::pin(payments::advance(ctx, payment, Status::Failed)),
        ),
        advance(
            "paymentRefund",
            "Refunds a completed payment (`service_role`) and takes back the credits it \
             granted; `INSUFFICIENT_CREDITS` when they are already spent.",
            |ctx, payment| Box::pin(payments::advance(ctx, payment, Status::Refunded)),
        ),
    ]
}

/// A workflow that moves a payment on (`work`: to which state).
fn advance(
    name: &'static str,
    doc: &'static str,
    work: for<'a> fn(&'a WriteCtx<'a>, PaymentRef) -> BoxFuture<'a, ApiResult<Uuid>>,
) -> Declaration {
    declare(
        name,
        doc,
        Right::Write,
        vec![
            InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                .description("The payment's global id."),
        ],
        |input| {
            let gid = input
                .string("id")?
                .ok_or_else(|| ApiError::bad_input("input.id", "is required"))?;
            Ok(PaymentRef::Id(ids::decode_as("input.id", &gid, "Payment")?))
        },
        work,
        payment_row(),
    )
}

fn payment_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row("payment", "payments", |id| Some(*id))]
}

fn moved_rows() -> Vec<Returned<Moved>> {
    vec![
        Returned::Row("creditAccount", "credit_accounts", |m| Some(m.account)),
        Returned::Row("creditTransaction", "credit_transactions", |m| {
            Some(m.transaction)
        }),
    ]
}

impl Input<'_> {
    fn reference(&self) -> ApiResult<Option<Reference>> {
        self.string("reference")?
            .map(|r| Reference::parse("input.reference", &r))
            .transpose()
    }
}
