//! Mutations, shaped like the Shopify Admin API: `<object><Verb>(input:)` returning a
//! payload with the object and `userErrors { field message code }` for bad input.
//! Authentication and authorization failures are GraphQL errors with their code.
//!
//! - [`account`]: signing up and in, API keys.
//! - [`generated`]: create, update, delete and bulk upsert for every table that declares
//!   them.
//! - [`workflows`]: the domains' operations (`api/src/domains/`), one declaration each.
//!
//! A request's mutations share one transaction: when one fails (an error or
//! `userErrors`), the request rolls back, the mutations after it are not run (`NOT_RUN`),
//! and the response says `extensions.transaction: "ROLLED_BACK"`.

mod account;
mod generated;
mod workflows;

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, Object, SchemaBuilder, TypeRef,
};

use super::types::{parent, sync_field};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::request::RequestContext;
use crate::store;

/// A problem with the input, reported in the payload (nothing was changed).
struct UserError {
    field: Option<Vec<String>>,
    message: String,
    code: InputCode,
}

impl UserError {
    fn new(field: Option<Vec<String>>, code: InputCode, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
            code,
        }
    }
}

impl From<ApiError> for UserError {
    fn from(err: ApiError) -> Self {
        let code = match &err {
            ApiError::Conflict(_) => InputCode::Taken,
            ApiError::NotFound(_) => InputCode::NotFound,
            ApiError::Unauthenticated(_) => InputCode::Unauthenticated,
            _ => InputCode::Invalid,
        };
        let path = |field: String| Some(field.split('.').map(str::to_owned).collect());
        match err {
            ApiError::BadUserInput { field, message } => Self::new(path(field), code, message),
            ApiError::Refused {
                field,
                code,
                message,
            } => Self::new(path(field), code, message),
            other => Self::new(None, code, other.to_string()),
        }
    }
}

/// A payload field's value: a row or rows of an object type, or a plain value.
enum Out {
    Row(Arc<store::Row>),
    Rows(Vec<Arc<store::Row>>),
    Value(GqlValue),
}

/// A payload under construction: named values plus `userErrors`.
#[derive(Default)]
struct Payload {
    fields: Vec<(String, Out)>,
    errors: Vec<UserError>,
}

impl Payload {
    fn with(mut self, name: impl Into<String>, value: Out) -> Self {
        self.fields.push((name.into(), value));
        self
    }

    fn rejected(errors: Vec<UserError>) -> Self {
        Self {
            fields: Vec::new(),
            errors,
        }
    }
}

/// Who may run a mutation at all; the store's write rule and the domain functions check
/// anything finer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Right {
    /// Credentials that may write (not a READ or WORKER key).
    Write,
    /// The worker operations: `service_role` or a WORKER key.
    Work,
    /// Inbound messages: `service_role` or an integration's key.
    Ingest,
    /// A shop's storefront: its ingest key, or the shop itself.
    Storefront,
}

impl Right {
    /// `UNAUTHENTICATED` for anonymous callers, `FORBIDDEN` for other callers without the right.
    pub(super) fn check(self, principal: &Principal) -> ApiResult<()> {
        let allowed = match self {
            Self::Write => principal.may_write(),
            Self::Work => principal.may_work(),
            Self::Ingest => principal.may_ingest(),
            Self::Storefront => principal.may_track(),
        };
        match principal {
            _ if allowed => Ok(()),
            Principal::Anonymous => Err(ApiError::Unauthenticated("sign in first".to_owned())),
            _ => Err(ApiError::Forbidden(match self {
                Self::Write => "these credentials may not write".to_owned(),
                Self::Work => "worker operations need service_role or a WORKER API key".to_owned(),
                Self::Ingest => {
                    "inbound messages come from service_role or an integration's key".to_owned()
                }
                Self::Storefront => {
                    "storefront operations take a shop's ingest key or session token".to_owned()
                }
            })),
        }
    }
}

/// Row `id` of `table` as `scope` reads it on `db` (every column a client may read), if
/// it may: what a payload returns.
async fn read_row<C: sea_orm::ConnectionTrait>(
    db: &C,
    scope: &store::Scope,
    table: &str,
    id: uuid::Uuid,
) -> ApiResult<Option<Arc<store::Row>>> {
    let table = crate::tables::tables().named(table)?;
    let mut rows = store::find_by_ids(db, scope, table, store::Columns::all(table), &[id]).await?;
    Ok(rows.remove(&id).map(Arc::new))
}

/// Runs a mutation's body in the request's transaction: not at all after an earlier
/// mutation of the request failed, and any failure (input problems included) fails the
/// whole request. Input problems and missing rows are `userErrors`; what the caller must
/// handle as an error (credentials, rights) stays a GraphQL error.
async fn perform(
    req: &RequestContext,
    body: impl Future<Output = ApiResult<Payload>>,
) -> ApiResult<Payload> {
    if req.has_failed() {
        return Ok(Payload::rejected(vec![UserError::new(
            None,
            InputCode::NotRun,
            "an earlier mutation of this request failed; nothing of the request was kept",
        )]));
    }
    let result = match body.await {
        Err(
            error @ (ApiError::BadUserInput { .. }
            | ApiError::Refused { .. }
            | ApiError::Conflict(_)
            | ApiError::NotFound(_)),
        ) => Ok(Payload::rejected(vec![error.into()])),
        Err(ApiError::Several(errors)) => Ok(Payload::rejected(
            errors.into_iter().map(UserError::from).collect(),
        )),
        other => other,
    };
    if !matches!(&result, Ok(payload) if payload.errors.is_empty()) {
        req.fail();
    }
    result
}

fn payload_type(name: &str, fields: &[(String, TypeRef, String)]) -> Object {
    let mut object = Object::new(name).field(
        Field::new(
            "userErrors",
            TypeRef::named_nn_list_nn("UserError"),
            |ctx| {
                FieldFuture::new(async move {
                    let payload = ctx.parent_value.try_downcast_ref::<Payload>()?;
                    Ok(Some(FieldValue::list(
                        payload.errors.iter().map(|e| FieldValue::borrowed_any(e)),
                    )))
                })
            },
        )
        .description("What was wrong with the input; empty on success."),
    );
    for (field, ty, doc) in fields {
        let name = field.clone();
        object =
            object.field(
                Field::new(field, ty.clone(), move |ctx| {
                    let field = name.clone();
                    FieldFuture::new(async move {
                        let payload = ctx.parent_value.try_downcast_ref::<Payload>()?;
                        Ok(payload.fields.iter().find(|(name, _)| *name == field).map(
                            |(_, value)| match value {
                                Out::Row(row) => FieldValue::owned_any(row.clone()),
                                Out::Rows(rows) => FieldValue::list(
                                    rows.iter().map(|row| FieldValue::owned_any(row.clone())),
                                ),
                                Out::Value(value) => FieldValue::value(value.clone()),
                            },
                        ))
                    })
                })
                .description(doc.as_str()),
            );
    }
    object
}

fn user_error_types(builder: SchemaBuilder) -> SchemaBuilder {
    let codes = Enum::new("UserErrorCode")
        .description("What is wrong with an input field.")
        .items(
            InputCode::ALL
                .iter()
                .map(|code| EnumItem::new(code.name()).description(code.description())),
        );
    let error = Object::new("UserError")
        .description("A problem with a mutation's input.")
        .field(
            sync_field("field", TypeRef::named_nn_list(TypeRef::STRING), |v| {
                let error = parent::<UserError>(v)?;
                Ok(error.field.as_ref().map(|path| {
                    FieldValue::value(GqlValue::List(
                        path.iter().map(|p| GqlValue::from(p.clone())).collect(),
                    ))
                }))
            })
            .description(
                "The path to the input field at fault (`[\"inputs\", \"3\", \"handle\"]`), if one is.",
            ),
        )
        .field(sync_field(
            "message",
            TypeRef::named_nn(TypeRef::STRING),
            |v| {
                Ok(Some(FieldValue::value(
                    parent::<UserError>(v)?.message.clone(),
                )))
            },
        ))
        .field(
            sync_field("code", TypeRef::named_nn("UserErrorCode"), |v| {
                Ok(Some(FieldValue::value(GqlValue::Enum(
                    async_graphql::Name::new(parent::<UserError>(v)?.code.name()),
                ))))
            })
            .description("A stable code to switch on."),
        );
    builder.register(codes).register(error)
}

/// Registers the mutation root and its types.
pub fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let mut root = Object::new("Mutation")
        .description("Changes. A request's mutations run in one transaction: all or nothing.");
    let mut builder = user_error_types(builder);
    for field in account::fields() {
        root = root.field(field);
    }
    builder = account::register(builder);
    let (builder, fields) = generated::register(builder);
    for field in fields {
        root = root.field(field);
    }
    let (builder, fields) = workflows::register(builder);
    for field in fields {
        root = root.field(field);
    }
    builder.register(root)
}
