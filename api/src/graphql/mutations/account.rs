//! Accounts: signing up and in, and the signed-in user's API keys.

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, ResolverContext, SchemaBuilder,
    TypeRef, ValueAccessor,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Out, Payload, payload_type, perform, read_row};
use crate::auth::{self, KeyScope, Principal, passwords};
use crate::error::{ApiError, ApiResult};
use crate::graphql::resolve::{request, run};
use crate::realtime::Write;
use crate::request::RequestContext;
use crate::store::Scope;

/// How long tokens minted by `signUp` / `signIn` last.
const SESSION_HOURS: i64 = 1;

/// The account mutations.
pub(super) fn fields() -> Vec<Field> {
    vec![
        mutation(
            "signUp",
            "SignUp",
            "Creates an account (with its profile, 100 free credits and notification preferences) and signs it in.",
            sign_up,
        ),
        mutation(
            "signIn",
            "SignIn",
            "Signs in with email and password. A wrong password and an unknown email get the same answer.",
            sign_in,
        ),
        mutation(
            "apiKeyCreate",
            "ApiKeyCreate",
            "Creates an API key for the signed-in user; the secret is shown once.",
            api_key_create,
        ),
        mutation(
            "apiKeyRevoke",
            "ApiKeyRevoke",
            "Revokes one of the signed-in user's API keys, at once.",
            api_key_revoke,
        ),
    ]
}

/// Registers the account mutations' types.
pub(super) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let user = TypeRef::named("User");
    let token = TypeRef::named(TypeRef::STRING);
    builder
        .register(
            Enum::new("ApiKeyScope")
                .description("What an API key may do.")
                .items(["READ", "WRITE", "WORKER"]),
        )
        .register(
            InputObject::new("SignUpInput")
                .field(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
                .field(
                    InputValue::new("password", TypeRef::named_nn(TypeRef::STRING))
                        .description("8 to 256 characters."),
                )
                .field(InputValue::new("name", TypeRef::named(TypeRef::STRING))),
        )
        .register(
            InputObject::new("SignInInput")
                .field(InputValue::new("email", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new(
                    "password",
                    TypeRef::named_nn(TypeRef::STRING),
                )),
        )
        .register(
            InputObject::new("ApiKeyCreateInput")
                .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
                .field(
                    InputValue::new("scopes", TypeRef::named_nn_list("ApiKeyScope"))
                        .description("Defaults to [READ]."),
                )
                .field(
                    InputValue::new("expiresAt", TypeRef::named("DateTime"))
                        .description("When the key stops working; never by default."),
                ),
        )
        .register(
            InputObject::new("ApiKeyRevokeInput")
                .field(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .register(payload_type(
            "SignUpPayload",
            &[
                ("user".to_owned(), user.clone(), "The new user.".to_owned()),
                (
                    "token".to_owned(),
                    token.clone(),
                    "A session token (JWT) for the new user.".to_owned(),
                ),
            ],
        ))
        .register(payload_type(
            "SignInPayload",
            &[
                ("user".to_owned(), user, "The signed-in user.".to_owned()),
                (
                    "token".to_owned(),
                    token,
                    "A session token (JWT).".to_owned(),
                ),
            ],
        ))
        .register(payload_type(
            "ApiKeyCreatePayload",
            &[
                (
                    "apiKey".to_owned(),
                    TypeRef::named("ApiKey"),
                    "The new key (its secret is never stored).".to_owned(),
                ),
                (
                    "secret".to_owned(),
                    TypeRef::named(TypeRef::STRING),
                    "The key itself, shown this once: send it as `x-api-key`.".to_owned(),
                ),
            ],
        ))
        .register(payload_type(
            "ApiKeyRevokePayload",
            &[(
                "apiKey".to_owned(),
                TypeRef::named("ApiKey"),
                "The revoked key.".to_owned(),
            )],
        ))
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
                let payload = perform(req, handler(&ctx, req)).await?;
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
    let row = read_row(db, scope, table, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(table.to_owned()))?;
    Ok(Out::Row(row))
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
        roles: Vec::new(),
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
        // anonymous caller's, so it runs with the service's rights.
        let db = req.service_db();
        let user = passwords::sign_up(&db, &email, password, name)
            .await
            .map_err(|e| within("input", e))?;
        tracing::info!(user.id = %user.id, "signed up user {}", user.id);
        req.outbox
            .record(Write::insert("users", user.id, Some(user.id)));
        let object = object(&db, &user_scope(user.id), "users", user.id).await?;
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
            Ok(email) => passwords::sign_in(&req.service_db(), &email, password).await,
            Err(_) => Err(ApiError::Unauthenticated(
                "wrong email or password".to_owned(),
            )),
        };
        let user = match user {
            Ok(user) => user,
            Err(error @ ApiError::Unauthenticated(_)) => {
                return Ok(Payload::rejected(vec![error.into()]));
            }
            Err(error) => return Err(error),
        };
        let object = object(&req.service_db(), &user_scope(user.id), "users", user.id).await?;
        Ok(Payload::default()
            .with("user", object)
            .with("token", Out::Value(session_token(req, user.id)?.into())))
    })
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

/// The signed-in user managing their API keys, or why not: it takes a session (a JWT)
/// that may write, never an API key, so a leaked key cannot make itself successors.
fn writing_user(principal: &Principal) -> ApiResult<Uuid> {
    match principal {
        Principal::User { key: Some(_), .. } => Err(ApiError::Forbidden(
            "API keys are managed with a signed-in user's session, not with an API key".to_owned(),
        )),
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
                            ApiError::bad_input("input.scopes", "must be READ, WRITE or WORKER")
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
        req.outbox
            .record(Write::insert("api_keys", key.id, Some(user)));
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
        let id = crate::graphql::ids::decode_as("input.id", gid, "ApiKey")?;
        let key = auth::api_keys::revoke(&req.db, user, id).await?;
        tracing::info!(api_key.id = %key.id, user.id = %user, "revoked API key {}", key.key_prefix);
        req.outbox
            .record(Write::update("api_keys", key.id, Some(user)));
        let object = object(&req.db, &req.scope, "api_keys", key.id).await?;
        Ok(Payload::default().with("apiKey", object))
    })
}
