//! Tenancy: which rows a principal may see, as one SQL condition per table.
//!
//! Every read the store makes starts from [`Scope::condition`]. It fails closed: a table
//! without an owner rule in the catalog cannot be read by anyone but `service_role`'s
//! tools, and a principal that owns nothing of a table's kind sees none of its rows.

use migration::catalog::Tenant;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use uuid::Uuid;

use crate::error::ApiError;
use crate::tables::Table;

/// Who is asking, reduced to what decides which rows they see.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `service_role`: every row.
    Service,
    /// A signed-in user: their own rows, and their distributors' rows.
    User {
        /// `users.id`.
        id: Uuid,
        /// The distributors the user is a member of (through `user_profiles`).
        distributors: Vec<Uuid>,
    },
    /// A Shopify shop (session token): its own rows.
    Shop {
        /// `shops.id`.
        id: Uuid,
    },
    /// Nobody: no rows at all.
    Nobody,
}

impl Scope {
    /// The condition a row of `table` must meet to be visible.
    pub fn condition(&self, table: &Table) -> Result<Condition, ApiError> {
        let Some(spec) = table.spec else {
            return Err(ApiError::Internal(format!(
                "table {} has no owner rule and cannot be read",
                table.name
            )));
        };
        let owner = || Expr::col(spec.owner_column);
        let none = || Condition::all().add(Expr::cust("1 = 0"));
        let shared = |owned: Condition| {
            if spec.shared_when_null {
                Condition::any().add(owned).add(owner().is_null())
            } else {
                owned
            }
        };
        Ok(match (self, spec.tenant) {
            (Self::Service, _) => Condition::all(),
            (Self::User { id, .. }, Tenant::User) => shared(Condition::all().add(owner().eq(*id))),
            (Self::User { distributors, .. }, Tenant::Distributor) if !distributors.is_empty() => {
                shared(Condition::all().add(owner().is_in(distributors.iter().copied())))
            }
            (Self::Shop { id }, Tenant::Shop) => shared(Condition::all().add(owner().eq(*id))),
            _ => none(),
        })
    }

    /// Whether a row of `table` whose owner column holds `owner` is visible: the rule of
    /// [`Scope::condition`], arm for arm, for a row already in hand (a change event,
    /// deletes included). Keep the two in step.
    pub fn allows(&self, table: &Table, owner: Option<Uuid>) -> bool {
        let Some(spec) = table.spec else {
            return false;
        };
        let shared = |owned: bool| owned || (spec.shared_when_null && owner.is_none());
        match (self, spec.tenant) {
            (Self::Service, _) => true,
            (Self::User { id, .. }, Tenant::User) => shared(owner == Some(*id)),
            (Self::User { distributors, .. }, Tenant::Distributor) if !distributors.is_empty() => {
                shared(owner.is_some_and(|o| distributors.contains(&o)))
            }
            (Self::Shop { id }, Tenant::Shop) => shared(owner == Some(*id)),
            _ => false,
        }
    }
}
