//! AI clones: the rule the generated `aiCloneCreate` / `aiCloneUpdate` apply to `config`,
//! seed 002's documented shape: `{"model_version": "4.0", "temperature": 0.7,
//! "max_tokens": 2000, "custom_parameters": {}}`, every key optional, no other key.

use sea_orm::Value;
use serde_json::Value as Json;

use crate::error::InputCode;

/// The keys a clone's config may have.
pub const CONFIG_KEYS: [&str; 4] = [
    "model_version",
    "temperature",
    "max_tokens",
    "custom_parameters",
];

/// The rule for one column of `ai_clones` (see [`crate::store::write::Rule`]).
pub fn rule(column: &str, value: &Value) -> Result<(), (InputCode, String)> {
    match (column, value) {
        ("config", Value::Json(Some(config))) => check_config(config),
        _ => Ok(()),
    }
}

fn check_config(config: &Json) -> Result<(), (InputCode, String)> {
    let invalid = |message: String| Err((InputCode::Invalid, message));
    let Json::Object(config) = config else {
        return invalid("must be an object".to_owned());
    };
    if let Some(key) = config.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
        return invalid(format!(
            "{key} is not a setting: {}",
            CONFIG_KEYS.join(", ")
        ));
    }
    let at = |key: &str| config.get(key).filter(|v| !v.is_null());
    if let Some(version) = at("model_version")
        && !version
            .as_str()
            .is_some_and(|v| !v.trim().is_empty() && v.len() <= 50)
    {
        return invalid("model_version must be text of 1 to 50 characters".to_owned());
    }
    if let Some(temperature) = at("temperature")
        && !temperature
            .as_f64()
            .is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return invalid("temperature must be a number from 0 to 2".to_owned());
    }
    if let Some(tokens) = at("max_tokens")
        && !tokens.as_i64().is_some_and(|t| (1..=200_000).contains(&t))
    {
        return invalid("max_tokens must be a whole number from 1 to 200000".to_owned());
    }
    if let Some(custom) = at("custom_parameters")
        && !custom.is_object()
    {
        return invalid("custom_parameters must be an object".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(config: Json) -> Result<(), (InputCode, String)> {
        rule("config", &Value::Json(Some(Box::new(config))))
    }

    #[test]
    fn configs_have_the_seeds_shape() {
        assert!(check(json!({})).is_ok());
        assert!(
            check(json!({ "model_version": "4.0", "temperature": 0.7, "max_tokens": 2000, "custom_parameters": {} }))
                .is_ok()
        );
        for bad in [
            json!([]),
            json!({ "temprature": 0.7 }),
            json!({ "temperature": 3 }),
            json!({ "temperature": "hot" }),
            json!({ "max_tokens": 0 }),
            json!({ "max_tokens": 1.5 }),
            json!({ "model_version": "" }),
            json!({ "custom_parameters": [] }),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }
}
