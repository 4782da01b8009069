//! External integrations' configuration and secrets. `config` (generated writes) is
//! checked by [`rule`] and holds no secret; the provider's credentials go through
//! `externalIntegrationSetSecrets` ([`set`], admins), which stores them encrypted in
//! `secrets_enc`, a column no field returns.

use sea_orm::ConnectionTrait;
use sea_orm::Value;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::crypto::Column;
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// Where an integration's secrets are kept, encrypted (a JSON object of name to value).
pub const SECRETS: Column = Column {
    table: "external_integrations",
    name: "secrets_enc",
};

/// The most settings or secrets one integration holds.
const MAX_KEYS: usize = 50;
/// The largest `config`, serialised, in bytes.
const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// The longest secret value, in characters.
const MAX_SECRET: usize = 4_096;
/// Parts of a setting's name that say it is a secret.
const SECRET_NAMES: [&str; 8] = [
    "secret",
    "token",
    "password",
    "api_key",
    "apikey",
    "private_key",
    "privatekey",
    "credential",
];

/// The rule of the generated writes: `provider` is 1 to 50 of a-z, 0-9, `_` and `-`;
/// `config` an object of at most 50 settings, none of them a secret.
pub fn rule(column: &str, value: &Value) -> Result<(), (InputCode, String)> {
    let invalid = |message: String| Err((InputCode::Invalid, message));
    match (column, value) {
        ("provider", Value::String(Some(provider))) => {
            let ok = (1..=50).contains(&provider.len())
                && provider
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if ok {
                Ok(())
            } else {
                invalid("must be 1 to 50 of a-z, 0-9, _ and -, like whatsapp or twilio".to_owned())
            }
        }
        ("config", Value::Json(Some(config))) => {
            let Json::Object(settings) = config.as_ref() else {
                return invalid("must be an object".to_owned());
            };
            if settings.len() > MAX_KEYS || config.to_string().len() > MAX_CONFIG_BYTES {
                return invalid(format!(
                    "must hold at most {MAX_KEYS} settings in {MAX_CONFIG_BYTES} bytes"
                ));
            }
            match settings.keys().find(|k| looks_secret(k)) {
                Some(key) => invalid(format!(
                    "{key} looks like a secret: set it with externalIntegrationSetSecrets, \
                     which stores it encrypted"
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// An integration's new secrets, checked.
#[derive(Clone)]
pub struct NewSecrets {
    /// `external_integrations.id`.
    pub integration: Uuid,
    /// Name to value; empty clears them.
    pub secrets: Map<String, Json>,
}

impl std::fmt::Debug for NewSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecrets")
            .field("integration", &self.integration)
            .field("names", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NewSecrets {
    /// Checks `input.secrets`: an object of at most 50 names (1 to 64 characters) to text
    /// values of 1 to 4,096 characters.
    pub fn parse(integration: Uuid, secrets: Option<Json>) -> ApiResult<Self> {
        let refused = || {
            ApiError::refused(
                "input.secrets",
                InputCode::Invalid,
                format!(
                    "must be an object of at most {MAX_KEYS} names to text values of 1 to \
                     {MAX_SECRET} characters"
                ),
            )
        };
        let Some(Json::Object(secrets)) = secrets else {
            return Err(refused());
        };
        let valid = secrets.len() <= MAX_KEYS
            && secrets.iter().all(|(name, value)| {
                (1..=64).contains(&name.chars().count())
                    && value
                        .as_str()
                        .is_some_and(|v| (1..=MAX_SECRET).contains(&v.chars().count()))
            });
        if valid {
            Ok(Self {
                integration,
                secrets,
            })
        } else {
            Err(refused())
        }
    }
}

/// Replaces an integration's secrets (admins); an empty object clears them. Returns the
/// integration.
pub async fn set(ctx: &WriteCtx<'_>, new: NewSecrets) -> ApiResult<Uuid> {
    let table = tables().named("external_integrations")?;
    let mut find = Query::select();
    find.from(table.name)
        .column("distributor_id")
        .and_where(Expr::col("id").eq(new.integration))
        .cond_where(ctx.scope.write_condition(table)?);
    let distributor: Uuid = match ctx.db.query_one(&find).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => {
            return Err(ApiError::refused(
                "input.id",
                InputCode::NotFound,
                "no such integration",
            ));
        }
    };
    let sealed = if new.secrets.is_empty() {
        None
    } else {
        let plain = Json::Object(new.secrets).to_string();
        Some(ctx.encryption.encrypt(SECRETS, plain.as_bytes())?)
    };
    let mut update = Query::update();
    update
        .table(table.name)
        .value("secrets_enc", sealed)
        .value("updated_at", chrono::Utc::now())
        .and_where(Expr::col("id").eq(new.integration));
    ctx.db.execute(&update).await?;
    ctx.outbox.record(Write::update(
        "external_integrations",
        new.integration,
        Some(distributor),
    ));
    Ok(new.integration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: Json) -> Result<(), (InputCode, String)> {
        rule("config", &Value::Json(Some(Box::new(json))))
    }

    #[test]
    fn config_holds_no_secret() {
        assert!(config(serde_json::json!({"phone_number_id": "123", "region": "eu"})).is_ok());
        for key in [
            "api_key",
            "AuthToken",
            "client-secret",
            "password",
            "privateKey",
        ] {
            assert!(config(serde_json::json!({ key: "x" })).is_err(), "{key}");
        }
        assert!(config(serde_json::json!(["a"])).is_err());
        assert!(rule("provider", &Value::String(Some("twilio".to_owned()))).is_ok());
        assert!(rule("provider", &Value::String(Some("Twilio SMS".to_owned()))).is_err());
    }

    #[test]
    fn secrets_are_text_values_and_not_shown() {
        let id = Uuid::new_v4();
        let ok = NewSecrets::parse(id, Some(serde_json::json!({"auth_token": "tok_123"}))).unwrap();
        assert!(!format!("{ok:?}").contains("tok_123"));
        assert!(NewSecrets::parse(id, Some(serde_json::json!({"n": 1}))).is_err());
        assert!(NewSecrets::parse(id, Some(serde_json::json!({"n": ""}))).is_err());
        assert!(NewSecrets::parse(id, None).is_err());
        assert!(
            NewSecrets::parse(id, Some(serde_json::json!({})))
                .unwrap()
                .secrets
                .is_empty()
        );
    }
}
