//! Profiles: the rules the generated `profileUpdate` applies to what a user sets (seed
//! 001's profile page): an https avatar URL, a bio of at most 500 characters, an IANA time
//! zone name and a BCP 47 locale tag.

use sea_orm::Value;

use crate::error::InputCode;

/// The longest bio.
pub const MAX_BIO: usize = 500;

/// The rule for one column of `profiles` (see [`crate::store::write::Rule`]).
pub fn rule(column: &str, value: &Value) -> Result<(), (InputCode, String)> {
    let Value::String(Some(text)) = value else {
        return Ok(());
    };
    let invalid = |message: &str| Err((InputCode::Invalid, message.to_owned()));
    match column {
        "avatar_url" if !is_https_url(text) => invalid("must be an https URL"),
        "bio" if text.chars().count() > MAX_BIO => Err((
            InputCode::TooLong,
            format!("is longer than {MAX_BIO} characters"),
        )),
        "timezone" if !is_time_zone(text) => {
            invalid("must be an IANA time zone name, like Europe/Paris or UTC")
        }
        "locale" if !is_locale(text) => invalid("must be a BCP 47 language tag, like en or pt-BR"),
        _ => Ok(()),
    }
}

fn is_https_url(text: &str) -> bool {
    text.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && host.contains('.') && !text.chars().any(char::is_whitespace)
    })
}

/// `UTC`, or `Area/Location[/More]` in the tz database's spelling.
fn is_time_zone(text: &str) -> bool {
    let mut parts = text.split('/');
    let area = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let word = |s: &str| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    matches!(text, "UTC" | "GMT")
        || (word(area) && !rest.is_empty() && rest.iter().all(|p| word(p)))
}

/// A language (2-3 letters) and optional subtags (2-8 letters or digits).
fn is_locale(text: &str) -> bool {
    let mut parts = text.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::String(Some(s.to_owned()))
    }

    #[test]
    fn profile_values_follow_their_formats() {
        assert!(rule("avatar_url", &text("https://cdn.example.com/a.png")).is_ok());
        assert!(rule("avatar_url", &text("http://cdn.example.com/a.png")).is_err());
        assert!(rule("avatar_url", &text("https://nohost")).is_err());
        assert!(rule("timezone", &text("Europe/Paris")).is_ok());
        assert!(rule("timezone", &text("America/Argentina/Buenos_Aires")).is_ok());
        assert!(rule("timezone", &text("UTC")).is_ok());
        assert!(rule("timezone", &text("Paris")).is_err());
        assert!(rule("timezone", &text("europe/paris")).is_err());
        assert!(rule("locale", &text("pt-BR")).is_ok());
        assert!(rule("locale", &text("en")).is_ok());
        assert!(rule("locale", &text("english")).is_err());
        assert_eq!(
            rule("bio", &text(&"b".repeat(MAX_BIO + 1))).map_err(|e| e.0),
            Err(InputCode::TooLong)
        );
        assert!(rule("bio", &text(&"é".repeat(MAX_BIO))).is_ok());
    }
}
