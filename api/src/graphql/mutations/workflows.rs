//! The workflows on the schema (`api/src/domains/`), one declaration each: the mutation's
//! name and description, its input fields, how the input becomes the domain's checked
//! input, which domain function runs, and which rows its payload returns (each read by a
//! typed accessor of the domain's output, then as the caller reads it).

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, ObjectAccessor, ResolverContext,
    SchemaBuilder, TypeRef,
};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{Out, Payload, payload_type, perform};
use crate::domains::WriteCtx;
use crate::domains::billing::credits::{self, Amount, Grant, Moved, Reference, Spend};
use crate::error::{ApiError, ApiResult};
use crate::graphql::model::model;
use crate::graphql::resolve::{request, run};
use crate::request::RequestContext;
use crate::store::{self, Columns};
use crate::tables::tables;

/// Every workflow the schema serves.
fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "creditsSpend",
            "Spends the signed-in user's credits: the balance and its ledger row change together; \
             a short balance is `INSUFFICIENT_CREDITS` and changes nothing.",
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
    ]
}

fn moved_rows() -> Vec<Returned<Moved>> {
    vec![
        ("creditAccount", "credit_accounts", |m| m.account),
        ("creditTransaction", "credit_transactions", |m| {
            m.transaction
        }),
    ]
}

/// A payload field: its name, the table of its row, and which row of the output it is.
type Returned<O> = (&'static str, &'static str, fn(&O) -> Uuid);

type Body = Arc<
    dyn for<'a> Fn(&'a WriteCtx<'a>, Input<'a>) -> BoxFuture<'a, ApiResult<Vec<(String, Uuid)>>>
        + Send
        + Sync,
>;

/// One workflow, its types erased for the schema.
struct Declaration {
    name: &'static str,
    doc: &'static str,
    input: Vec<InputValue>,
    payload: Vec<(&'static str, &'static str)>,
    body: Body,
}

/// Declares workflow `name`: `parse` turns its input into the domain's input, `work`
/// runs it, `returned` names the payload's rows.
fn declare<I: Send + 'static, O: Send + 'static>(
    name: &'static str,
    doc: &'static str,
    input: Vec<InputValue>,
    parse: fn(&Input<'_>) -> ApiResult<I>,
    work: for<'a> fn(&'a WriteCtx<'a>, I) -> BoxFuture<'a, ApiResult<O>>,
    returned: Vec<Returned<O>>,
) -> Declaration {
    let payload = returned.iter().map(|(f, t, _)| (*f, *t)).collect();
    let body: Body = Arc::new(move |ctx, input| {
        let returned = returned.clone();
        Box::pin(async move {
            let parsed = parse(&input)?;
            let output = work(ctx, parsed).await?;
            Ok(returned
                .iter()
                .map(|(field, _, pick)| ((*field).to_owned(), pick(&output)))
                .collect())
        })
    });
    Declaration {
        name,
        doc,
        input,
        payload,
        body,
    }
}

fn int(name: &str, doc: &str) -> InputValue {
    InputValue::new(name, TypeRef::named_nn(TypeRef::INT)).description(doc)
}

fn text(name: &str, doc: &str) -> InputValue {
    InputValue::new(name, TypeRef::named(TypeRef::STRING)).description(doc)
}

/// A workflow's `input` argument, read field by field; errors name `input.<field>`.
struct Input<'a>(ObjectAccessor<'a>);

impl Input<'_> {
    fn path(name: &str) -> String {
        format!("input.{name}")
    }

    fn int(&self, name: &str) -> ApiResult<i64> {
        self.0
            .try_get(name)
            .and_then(|v| v.i64())
            .map_err(|_| ApiError::bad_input(Self::path(name), "must be an integer"))
    }

    fn string(&self, name: &str) -> ApiResult<Option<String>> {
        match self.0.get(name).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(value) => value
                .string()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| ApiError::bad_input(Self::path(name), "must be a string")),
        }
    }

    fn uuid(&self, name: &str) -> ApiResult<Uuid> {
        let text = self
            .string(name)?
            .ok_or_else(|| ApiError::bad_input(Self::path(name), "is required"))?;
        Uuid::parse_str(&text).map_err(|_| ApiError::bad_input(Self::path(name), "is not a uuid"))
    }

    fn reference(&self) -> ApiResult<Option<Reference>> {
        self.string("reference")?
            .map(|r| Reference::parse("input.reference", &r))
            .transpose()
    }
}

/// Registers the workflows' types; returns their root fields.
pub(super) fn register(mut builder: SchemaBuilder) -> (SchemaBuilder, Vec<Field>) {
    let mut fields = Vec::new();
    for mut declaration in declarations() {
        let prefix = crate::graphql::names::pascal(declaration.name);
        let input = std::mem::take(&mut declaration.input).into_iter().fold(
            InputObject::new(format!("{prefix}Input")),
            InputObject::field,
        );
        let payload: Vec<(String, TypeRef, String)> = declaration
            .payload
            .iter()
            .map(|(field, table)| {
                let type_name = tables()
                    .get(table)
                    .map(|t| model()[t.index].type_name.clone())
                    .unwrap_or_default();
                (
                    (*field).to_owned(),
                    TypeRef::named(type_name),
                    format!("The row, as the caller now reads it ({table})."),
                )
            })
            .collect();
        builder = builder
            .register(input)
            .register(payload_type(&format!("{prefix}Payload"), &payload));
        fields.push(field(declaration, &prefix));
    }
    (builder, fields)
}

fn field(declaration: Declaration, prefix: &str) -> Field {
    let declaration = Arc::new(declaration);
    let doc = declaration.doc;
    let name = declaration.name;
    Field::new(
        name,
        TypeRef::named_nn(format!("{prefix}Payload")),
        move |ctx| {
            let declaration = declaration.clone();
            FieldFuture::new(run(async move {
                let req = request(ctx.ctx)?;
                let payload = perform(req, respond(&ctx, req, &declaration)).await?;
                Ok(Some(FieldValue::owned_any(payload)))
            }))
        },
    )
    .description(doc)
    .argument(InputValue::new(
        "input",
        TypeRef::named_nn(format!("{prefix}Input")),
    ))
}

/// Runs a workflow and reads the rows its payload returns under the caller's scope.
async fn respond(
    ctx: &ResolverContext<'_>,
    req: &RequestContext,
    declaration: &Declaration,
) -> ApiResult<Payload> {
    if !req.principal.may_write() {
        return Err(match req.principal {
            crate::auth::Principal::Anonymous => {
                ApiError::Unauthenticated("sign in first".to_owned())
            }
            _ => ApiError::Forbidden("these credentials may only read".to_owned()),
        });
    }
    let input = ctx
        .args
        .try_get("input")
        .and_then(|v| v.object())
        .map_err(|_| ApiError::bad_input("input", "must be an input object"))?;
    let write = WriteCtx {
        principal: &req.principal,
        scope: &req.scope,
        db: &req.db,
        outbox: &req.outbox,
    };
    let rows = (declaration.body)(&write, Input(input)).await?;
    let mut payload = Payload::default();
    for ((field, id), (_, table)) in rows.into_iter().zip(&declaration.payload) {
        let table = tables()
            .get(table)
            .ok_or_else(|| ApiError::Internal(format!("no table {table}")))?;
        let row = store::find_by_ids(&req.db, &req.scope, table, Columns::all(table), &[id])
            .await?
            .remove(&id);
        if let Some(row) = row {
            payload = payload.with(field, Out::Row(Arc::new(row)));
        }
    }
    Ok(payload)
}
