//! `distributorCreate`: a signed-in user makes a distributor and becomes its owner, in one
//! transaction.

use migration::catalog::Role;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, Query};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::domains::accounts::activity::{self, Change};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::store::violation;
use crate::tables::tables;

/// A checked new distributor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDistributor {
    /// 1 to 255 characters.
    pub name: String,
    /// Lower-case letters, digits and `-`, 1 to 100 characters; unique.
    pub slug: String,
}

impl NewDistributor {
    /// Checks `input.name` and `input.slug` (made from the name when not given).
    pub fn parse(name: &str, slug: Option<&str>) -> ApiResult<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ApiError::bad_input(
                "input.name",
                "must be 1 to 255 characters",
            ));
        }
        let slug = match slug {
            Some(slug) => {
                let ok = slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok || slug.is_empty() || slug.len() > 100 {
                    return Err(ApiError::bad_input(
                        "input.slug",
                        "must be 1 to 100 lower-case letters, digits or -",
                    ));
                }
                slug.to_owned()
            }
            None => slug_of(name),
        };
        if slug.is_empty() {
            return Err(ApiError::bad_input(
                "input.slug",
                "the name makes no slug: give one",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            slug,
        })
    }
}

/// `name` as a slug: ASCII letters and digits lower-cased, runs of anything else one `-`.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(100);
    slug.trim_end_matches('-').to_owned()
}

/// What `distributorCreate` made.
#[derive(Clone, Copy, Debug)]
pub struct Created {
    /// `distributors.id`.
    pub distributor: Uuid,
    /// The creator's `owner` membership (`user_profiles.id`).
    pub membership: Uuid,
}

/// Makes the distributor and its creator's `owner` membership.
pub async fn create(ctx: &WriteCtx<'_>, input: NewDistributor) -> ApiResult<Created> {
    let Principal::User { id: user, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "a distributor is made by a signed-in user, who becomes its owner".to_owned(),
        ));
    };
    let distributor = Uuid::new_v4();
    let membership = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("distributors")
        .columns(["id", "name", "slug"])
        .values([
            Expr::val(distributor),
            Expr::val(input.name.as_str()),
            Expr::val(input.slug.as_str()),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut owner = Query::insert();
    owner
        .into_table("user_profiles")
        .columns(["id", "user_id", "role", "distributor_id"])
        .values([
            Expr::val(membership),
            Expr::val(*user),
            Expr::val(Role::Owner.as_str()),
            Expr::val(distributor),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Until the owner's membership exists, the policies see a distributor of nobody's.
    ctx.db
        .as_service(async {
            if let Err(error) = ctx.db.execute(&insert).await {
                return Err(
                    match violation::classify(&error, tables().named("distributors")?) {
                        Some(v) if v.code == InputCode::Taken => ApiError::refused(
                            "input.slug",
                            InputCode::Taken,
                            "another distributor has this slug",
                        ),
                        _ => error.into(),
                    },
                );
            }
            ctx.db.execute(&owner).await?;
            Ok::<_, ApiError>(())
        })
        .await?;
    ctx.outbox.record(Write::insert(
        "distributors",
        distributor,
        Some(distributor),
    ));
    ctx.outbox
        .record(Write::insert("user_profiles", membership, Some(distributor)).key(*user));
    activity::record(
        ctx,
        Change {
            user: *user,
            entity_type: "distributor",
            entity: distributor,
            action: "distributor.created",
            from: json!(null),
            to: json!({ "slug": input.slug, "role": Role::Owner.as_str() }),
            details: None,
        },
    )
    .await?;
    Ok(Created {
        distributor,
        membership,
    })
}

/// The rule the generated distributor writes apply: `settings.audit_retention_days`, when
/// given, is 1 to 3650 days.
pub fn rule(column: &str, value: &sea_orm::Value) -> Result<(), (InputCode, String)> {
    match (column, value) {
        ("settings", sea_orm::Value::Json(Some(settings))) => {
            super::audits::retention_days(settings)
                .map(|_| ())
                .map_err(|message| (InputCode::Invalid, message))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_name_or_are_checked() {
        assert_eq!(
            NewDistributor::parse(" Acme Foods, Ltd. ", None)
                .unwrap()
                .slug,
            "acme-foods-ltd"
        );
        assert!(NewDistributor::parse("Acme", Some("Acme")).is_err());
        assert!(NewDistributor::parse("", None).is_err());
        assert!(NewDistributor::parse("!!!", None).is_err());
    }
}
