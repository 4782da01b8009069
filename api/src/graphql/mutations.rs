//! Mutations, shaped like the Shopify Admin API: `<object><Verb>(input:)` returning a
//! payload with the object and `userErrors { field message code }` for bad input.
//! Authentication and authorization failures are GraphQL errors with their code.

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext,
    SchemaBuilder, TypeRef, ValueAccessor,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::RequestContext;
use super::resolve::{request, run};
use super::types::{parent, sync_field};
use crate::auth::{self, KeyScope, Principal, passwords};
use crate::error::{ApiError, ApiResult};
use crate::realtime::{Broker, Write};
use crate::store::{self, Columns, Scope};
use crate::tables::tables;

/// How long tokens minted by `signUp` / `signIn` last.
const SESSION_HOURS: i64 = 1;

/// A problem with the input, reported in the payload (nothing was changed).
struct UserError {
    field: Option<String>,
    message: String,
    code: &'static str,
}

impl From<ApiError> for UserError {
    fn from(err: ApiError) -> Self {
        let code = err.code();
        match err {
            ApiError::BadUserInput { field, message } => Self {
                field: Some(field),
                message,
                code,
            },
            other => Self {
                field: None,
                message: other.to_string(),
                code,
            },
        }
    }
}

/// A payload field's value: a row of an object type, or a plain value.
enum Out {
    Row(Arc<store::Row>),
    Value(GqlValue),
}

/// A payload under construction: named values plus `userErrors`.
#[derive(Default)]
struct Payload {
    fields: Vec<(&'static str, Out)>,
    errors: Vec<UserError>,
}

impl Payload {
    fn with(mut self, name: &'static str, value: Out) -> Self {
        self.fields.push((name, value));
        self
    }

    fn failed(error: ApiError) -> Self {
        Self {
            fields: Vec::new(),
            errors: vec![error.into()],
        }
    }
}

/// Errors the caller must handle as errors (not input problems) stay GraphQL errors.
fn payload_or_error(result: ApiResult<Payload>) -> ApiResult<Payload> {
    match result {
        Ok(payload) => Ok(payload),
        Err(
            error @ (ApiError::BadUserInput { .. } | ApiError::Conflict(_) | ApiError::NotFound(_)),
        ) => Ok(Payload::failed(error)),
        Err(error) => Err(error),
    }
}

fn payload_type(name: &str, fields: &[(&'static str, TypeRef, &'static str)]) -> Object {
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
        let field = *field;
        object =
            object.field(
                Field::new(field, ty.clone(), move |ctx| {
                    FieldFuture::new(async move {
                        let payload = ctx.parent_value.try_downcast_ref::<Payload>()?;
                        Ok(payload.fields.iter().find(|(name, _)| *name == field).map(
                            |(_, value)| match value {
                                Out::Row(row) => FieldValue::owned_any(row.clone()),
                                Out::Value(value) => FieldValue::value(value.clone()),
                            },
                        ))
                    })
                })
                .description(*doc),
            );
    }
    object
}

fn user_error_type() -> Object {
    Object::new("UserError")
        .description("A problem with a mutation's input.")
        .field(
            sync_field("field", TypeRef::named_list(TypeRef::STRING), |v| {
                let error = parent::<UserError>(v)?;
                Ok(error.field.as_ref().map(|field| {
                    FieldValue::value(GqlValue::List(
                        field
                            .split('.')
                            .map(|p| GqlValue::from(p.to_owned()))
                            .collect(),
                    ))
                }))
            })
            .description("The path to the input field at fault, if one is."),
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
            sync_field("code", TypeRef::named_nn(TypeRef::STRING), |v| {
                Ok(Some(FieldValue::value(parent::<UserError>(v)?.code)))
            })
            .description("A stable code: BAD_USER_INPUT, CONFLICT, NOT_FOUND, UNAUTHENTICATED."),
        )
}

/// Registers the mutation root and its types.
pub fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let user = TypeRef::named("User");
    let token = TypeRef::named(TypeRef::STRING);
    builder
        .register(user_error_type())
        .register(
            Enum::new("ApiKeyScope")
                .description("What an API key may do.")
                .items(["READ", "WRITE"]),
        )
        .register(
            InputObject::new("SignUpInput")
                .field(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("password", TypeRef::named_nn(TypeRef::STRING)).description("8 to 256 characters."))
                .field(InputValue::new("name", TypeRef::named(TypeRef::STRING))),
        )
        .register(
            InputObject::new("SignInInput")
                .field(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("password", TypeRef::named_nn(TypeRef::STRING))),
        )
        .register(
            InputObject::new("ApiKeyCreateInput")
                .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("scopes", TypeRef::named_nn_list("ApiKeyScope")).description("Defaults to [READ]."))
                .field(InputValue::new("expiresAt", TypeRef::named("DateTime")).description("When the key stops working; never by default.")),
        )
        .register(InputObject::new("ApiKeyRevokeInput").field(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))))
        .register(payload_type("SignUpPayload", &[
            ("user", user.clone(), "The new user."),
            ("token", token.clone(), "A session token (JWT) for the new user."),
        ]))
        .register(payload_type("SignInPayload", &[
            ("user", user, "The signed-in user."),
            ("token", token, "A session token (JWT)."),
        ]))
        .register(payload_type("ApiKeyCreatePayload", &[
            ("apiKey", TypeRef::named("ApiKey"), "The new key (its secret is never stored)."),
            ("secret", TypeRef::named(TypeRef::STRING), "The key itself, shown this once: send it as `x-api-key`."),
        ]))
        .register(payload_type("ApiKeyRevokePayload", &[("apiKey", TypeRef::named("ApiKey"), "The revoked key.")]))
        .register(
            Object::new("Mutation")
                .description("Changes, each in one transaction: all or nothing.")
                .field(mutation("signUp", "SignUp", "Creates an account (with its profile, 100 free credits and notification preferences) and signs it in.", sign_up))
                .field(mutation("signIn", "SignIn", "Signs in with email and password. A wrong password and an unknown email get the same answer.", sign_in))
                .field(mutation("apiKeyCreate", "ApiKeyCreate", "Creates an API key for the signed-in user; the secret is shown once.", api_key_create))
                .field(mutation("apiKeyRevoke", "ApiKeyRevoke", "Revokes one of the signed-in user's API keys, at once.", api_key_revoke)),
        )
}

type Handler = for<'a> fn(
    &'a ResolverContext<'a>,
    &'a RequestContext,
) -> futures_util::future::BoxFuture<'a, ApiResult<Payload>>;

fn mutation(
    name: &'static str,
    type_prefix: &'static str,
    doc: &'static str,
    handler: Handler,
) -> Field {
    Field::new(
        name,
        TypeRef::named_nn(format!("{type_prefix}Payload")),
        move |ctx| {
            FieldFuture::new(run(async move {
                let req = request(ctx.ctx)?;
                let payload = payload_or_error(handler(&ctx, req).await)?;
                Ok(Some(FieldValue::owned_any(payload)))
            }))
        },
    )
    .description(doc)
    .argument(InputValue::new(
        "input",
        TypeRef::named_nn(format!("{type_prefix}Input")),
    ))
}

fn input<'a>(
    ctx: &'a ResolverContext<'a>,
) -> ApiResult<async_graphql::dynamic::ObjectAccessor<'a>> {
    ctx.args
        .try_get("input")
        .and_then(|v| v.object())
        .map_err(|e| ApiError::bad_input("input", e.message))
}

fn string<'a>(value: Option<ValueAccessor<'a>>, field: &str) -> ApiResult<Option<&'a str>> {
    value
        .filter(|v| !v.is_null())
        .map(|v| {
            v.string()
                .map_err(|_| ApiError::bad_input(field, "must be a string"))
        })
        .transpose()
}

fn required<'a>(value: Option<ValueAccessor<'a>>, field: &str) -> ApiResult<&'a str> {
    string(value, field)?.ok_or_else(|| ApiError::bad_input(field, "is required"))
}

/// Loads row `id` of `table`, read with `scope` on `db`.
async fn object<C: sea_orm::ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &str,
    id: Uuid,
) -> ApiResult<Out> {
    let table = tables()
        .get(table)
        .ok_or_else(|| ApiError::Internal(format!("no table {table}")))?;
    let mut rows = store::find_by_ids(db, scope, table, Columns::all(table), &[id]).await?;
    let row = rows
        .remove(&id)
        .ok_or_else(|| ApiError::NotFound(table.name.to_owned()))?;
    Ok(Out::Row(Arc::new(row)))
}

fn session_token(req: &RequestContext, user: Uuid) -> ApiResult<String> {
    let now = Utc::now();
    auth::jwt::mint(
        &req.keys.user.secret,
        &auth::jwt::Claims {
            sub: user.to_string(),
            role: "authenticated".to_owned(),
            aud: auth::jwt::AUDIENCE.to_owned(),
            exp: (now + chrono::Duration::hours(SESSION_HOURS)).timestamp(),
            iat: Some(now.timestamp()),
            nbf: None,
        },
    )
}

fn user_scope(id: Uuid) -> Scope {
    Scope::User {
        id,
        distributors: Vec::new(),
    }
}

fn sign_up<'a>(
    ctx: &'a ResolverContext<'a>,
    req: &'a RequestContext,
) -> futures_util::future::BoxFuture<'a, ApiResult<Payload>> {
    Box::pin(async move {
        let input = input(ctx)?;
        let email =
            passwords::Email::parse("input.email", required(input.get("email"), "input.email")?)?;
        let password = required(input.get("password"), "input.password")?;
        let name = string(input.get("name"), "input.name")?;
        // Creating an account is the service's own act (as Supabase Auth's is), not the
        // anonymous caller's, so it runs on the pool rather than under the caller's claims.
        let user = passwords::sign_up(&req.pool, &email, password, name)
            .await
            .map_err(|e| within("input", e))?;
        tracing::info!(user.id = %user.id, "signed up user {}", user.id);
        publish(ctx, Write::insert("users", user.id, Some(user.id)));
        let object = object(&req.pool, &user_scope(user.id), "users", user.id).await?;
        Ok(Payload::default()
            .with("user", object)
            .with("token", Out::Value(session_token(req, user.id)?.into())))
    })
}

fn sign_in<'a>(
    ctx: &'a ResolverContext<'a>,
    req: &'a RequestContext,
) -> futures_util::future::BoxFuture<'a, ApiResult<Payload>> {
    Box::pin(async move {
        let input = input(ctx)?;
        let password = required(input.get("password"), "input.password")?;
        let email =
            passwords::Email::parse("input.email", required(input.get("email"), "input.email")?);
        let user = match email {
            Ok(email) => passwords::sign_in(&req.pool, &email, password).await,
            Err(_) => Err(ApiError::Unauthenticated(
                "wrong email or password".to_owned(),
            )),
        };
        let user = match user {
            Ok(user) => user,
            Err(error @ ApiError::Unauthenticated(_)) => return Ok(Payload::failed(error)),
            Err(error) => return Err(error),
        };
        let object = object(&req.pool, &user_scope(user.id), "users", user.id).await?;
        Ok(Payload::default()
            .with("user", object)
            .with("token", Out::Value(session_token(req, user.id)?.into())))
    })
}

/// Tells subscribers of a committed write (SQLite; on PostgreSQL the triggers do it).
fn publish(ctx: &ResolverContext<'_>, write: Write) {
    if let Ok(broker) = ctx.ctx.data::<Broker>() {
        broker.publish([write]);
    }
}

/// Places a service's input error under the mutation's `input` argument.
fn within(argument: &str, error: ApiError) -> ApiError {
    match error {
        ApiError::BadUserInput { field, message } => ApiError::BadUserInput {
            field: format!("{argument}.{field}"),
            message,
        },
        other => other,
    }
}

/// The signed-in user allowed to write, or why not.
fn writing_user(principal: &Principal) -> ApiResult<Uuid> {
    match principal {
        Principal::User { id, .. } if principal.may_write() => Ok(*id),
        Principal::User { .. } => Err(ApiError::Forbidden("this API key may only read".to_owned())),
        Principal::Anonymous => Err(ApiError::Unauthenticated("sign in first".to_owned())),
        _ => Err(ApiError::Forbidden(
            "only a signed-in user has API keys".to_owned(),
        )),
    }
}

fn api_key_create<'a>(
    ctx: &'a ResolverContext<'a>,
    req: &'a RequestContext,
) -> futures_util::future::BoxFuture<'a, ApiResult<Payload>> {
    Box::pin(async move {
        let user = writing_user(&req.principal)?;
        let input = input(ctx)?;
        let name = required(input.get("name"), "input.name")?.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::bad_input(
                "input.name",
                "must be 1 to 100 characters",
            ));
        }
        let scopes = match input.get("scopes").filter(|v| !v.is_null()) {
            None => vec![KeyScope::Read],
            Some(list) => {
                let list = list
                    .list()
                    .map_err(|_| ApiError::bad_input("input.scopes", "must be a list"))?;
                let mut scopes = Vec::new();
                for item in list.iter() {
                    let scope = item
                        .enum_name()
                        .ok()
                        .and_then(|n| KeyScope::parse(&n.to_ascii_lowercase()))
                        .ok_or_else(|| {
                            ApiError::bad_input("input.scopes", "must be READ or WRITE")
                        })?;
                    if !scopes.contains(&scope) {
                        scopes.push(scope);
                    }
                }
                if scopes.is_empty() {
                    return Err(ApiError::bad_input(
                        "input.scopes",
                        "give at least one scope",
                    ));
                }
                scopes
            }
        };
        let expires_at = match string(input.get("expiresAt"), "input.expiresAt")? {
            None => None,
            Some(text) => {
                let at = DateTime::parse_from_rfc3339(text)
                    .map_err(|_| ApiError::bad_input("input.expiresAt", "is not an RFC 3339 time"))?
                    .with_timezone(&Utc);
                if at <= Utc::now() {
                    return Err(ApiError::bad_input("input.expiresAt", "is in the past"));
                }
                Some(at)
            }
        };
        let (key, secret) =
            auth::api_keys::create(&req.db, user, name, &scopes, expires_at).await?;
        tracing::info!(api_key.id = %key.id, user.id = %user, "created API key {}", key.key_prefix);
        publish(ctx, Write::insert("api_keys", key.id, Some(user)));
        let object = object(&req.db, &req.scope, "api_keys", key.id).await?;
        Ok(Payload::default()
            .with("apiKey", object)
            .with("secret", Out::Value(secret.into())))
    })
}

fn api_key_revoke<'a>(
    ctx: &'a ResolverContext<'a>,
    req: &'a RequestContext,
) -> futures_util::future::BoxFuture<'a, ApiResult<Payload>> {
    Box::pin(async move {
        let user = writing_user(&req.principal)?;
        let input = input(ctx)?;
        let gid = required(input.get("id"), "input.id")?;
        let (type_name, id) = super::ids::decode("input.id", gid)?;
        if type_name != "ApiKey" {
            return Err(ApiError::bad_input("input.id", "is not an ApiKey id"));
        }
        let key = auth::api_keys::revoke(&req.db, user, id).await?;
        tracing::info!(api_key.id = %key.id, user.id = %user, "revoked API key {}", key.key_prefix);
        publish(ctx, Write::update("api_keys", key.id, Some(user)));
        let object = object(&req.db, &req.scope, "api_keys", key.id).await?;
        Ok(Payload::default().with("apiKey", object))
    })
}
