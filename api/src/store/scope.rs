//! Tenancy: which rows a principal may see, as one SQL condition per table.
//!
//! Every read the store makes starts from [`Scope::condition`]. It fails closed: a table
//! without an owner rule in the catalog cannot be read by anyone but `service_role`'s
//! tools, and a principal that owns nothing of a table's kind sees none of its rows.

use chrono::Utc;
use migration::catalog::{Role, TableSpec, Tenant};
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
        /// The user's role in each of them: what it may write there (a `viewer` nothing).
        roles: Vec<(Uuid, Role)>,
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
        let visible = match (self, spec.tenant) {
            (Self::Service, _) => Condition::all(),
            (Self::User { id, .. }, Tenant::User) => shared(Condition::all().add(owner().eq(*id))),
            (Self::User { distributors, .. }, Tenant::Distributor) if !distributors.is_empty() => {
                shared(Condition::all().add(owner().is_in(distributors.iter().copied())))
            }
            (Self::Shop { id }, Tenant::Shop) => shared(Condition::all().add(owner().eq(*id))),
            _ => none(),
        };
        Ok(unexpired(spec, visible))
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

    /// The write rule: the owners whose rows of `table` the scope may create, change and
    /// delete. Exactly the rows it reads ([`Scope::condition`]), minus shared rows (owner
    /// null: `service_role` only) and the distributors where the user's role is below the
    /// table's `write_role` (a viewer writes nothing).
    pub fn write_condition(&self, table: &Table) -> Result<Condition, ApiError> {
        let Some(spec) = table.spec else {
            return Err(ApiError::Internal(format!(
                "table {} has no owner rule and cannot be written",
                table.name
            )));
        };
        let owner = || Expr::col(spec.owner_column);
        let writable = match (self, spec.tenant) {
            (Self::Service, _) => Condition::all(),
            (Self::User { id, .. }, Tenant::User) => Condition::all().add(owner().eq(*id)),
            (Self::User { .. }, Tenant::Distributor) => {
                Condition::all().add(owner().is_in(self.writable_distributors(table)))
            }
            (Self::Shop { id }, Tenant::Shop) => Condition::all().add(owner().eq(*id)),
            _ => Condition::all().add(Expr::cust("1 = 0")),
        };
        Ok(unexpired(spec, writable))
    }

    /// Whether the scope may write a row of `table` owned by `owner`: the rule of
    /// [`Scope::write_condition`] for a row in hand. Keep the two in step.
    pub fn may_write(&self, table: &Table, owner: Option<Uuid>) -> bool {
        let Some(spec) = table.spec else {
            return false;
        };
        match (self, spec.tenant, owner) {
            (Self::Service, _, _) => true,
            (Self::User { id, .. }, Tenant::User, Some(owner)) => owner == *id,
            (Self::User { .. }, Tenant::Distributor, Some(owner)) => {
                self.writable_distributors(table).contains(&owner)
            }
            (Self::Shop { id }, Tenant::Shop, Some(owner)) => owner == *id,
            _ => false,
        }
    }

    /// The owner a new row of `table` gets when neither the input nor a parent row names
    /// one: the principal itself, or a user's only distributor it may write. `None` when
    /// there is no such single owner (`service_role`, a member of several distributors).
    pub fn own_key(&self, table: &Table) -> Option<Uuid> {
        match (self, table.spec?.tenant) {
            (Self::User { id, .. }, Tenant::User) | (Self::Shop { id }, Tenant::Shop) => Some(*id),
            (Self::User { .. }, Tenant::Distributor) => match self.writable_distributors(table)[..]
            {
                [only] => Some(only),
                _ => None,
            },
            _ => None,
        }
    }

    /// The user's role in `distributor`, if a member of it.
    pub fn role_in(&self, distributor: Uuid) -> Option<Role> {
        match self {
            Self::User { roles, .. } => roles
                .iter()
                .find(|(d, _)| *d == distributor)
                .map(|(_, role)| *role),
            _ => None,
        }
    }

    /// What the scope reads for column `index` of `table`: the column itself, or for a
    /// masked column, its full value only in the rows of distributors where the user's
    /// role reads it in full and its redacted twin elsewhere.
    pub fn served(&self, table: &Table, index: usize) -> Expr {
        let column = &table.columns[index];
        let Some(mask) = column.mask else {
            return Expr::col(column.name);
        };
        let redacted = Expr::col(table.columns[mask.redacted].name);
        let full_in: Vec<Uuid> = match self {
            Self::Service => return Expr::col(column.name),
            Self::User { roles, .. } => roles
                .iter()
                .filter(|(_, role)| *role >= mask.full_to)
                .map(|(d, _)| *d)
                .collect(),
            Self::Shop { .. } | Self::Nobody => Vec::new(),
        };
        match table.spec {
            Some(spec) if !full_in.is_empty() => Expr::case(
                Expr::col(spec.owner_column).is_in(full_in),
                Expr::col(column.name),
            )
            .finally(redacted)
            .into(),
            _ => redacted,
        }
    }

    /// The distributors whose rows of `table` the user's roles let it write.
    fn writable_distributors(&self, table: &Table) -> Vec<Uuid> {
        let (Self::User { roles, .. }, Some(spec)) = (self, table.spec) else {
            return Vec::new();
        };
        roles
            .iter()
            .filter(|(_, role)| *role >= spec.write_role && *role > Role::Viewer)
            .map(|(d, _)| *d)
            .collect()
    }
}

/// `condition`, for a table whose rows expire, also requiring the row to be unexpired.
fn unexpired(spec: &TableSpec, condition: Condition) -> Condition {
    match spec.expires {
        Some(column) => condition.add(
            Condition::any()
                .add(Expr::col(column).is_null())
                .add(Expr::col(column).gt(Utc::now())),
        ),
        None => condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tables;

    fn member(distributors: &[Uuid], viewing: &[Uuid]) -> Scope {
        Scope::User {
            id: Uuid::new_v4(),
            distributors: distributors.to_vec(),
            roles: distributors
                .iter()
                .map(|d| {
                    let role = if viewing.contains(d) {
                        Role::Viewer
                    } else {
                        Role::Owner
                    };
                    (*d, role)
                })
                .collect(),
        }
    }

    #[test]
    fn viewers_read_but_never_write_their_distributor() {
        let orders = tables().get("orders").unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let scope = member(&[a, b], &[b]);

        assert!(scope.allows(orders, Some(b)));
        assert!(!scope.may_write(orders, Some(b)));
        assert!(scope.may_write(orders, Some(a)));
        // The one distributor it may write is the default owner of a new row.
        assert_eq!(scope.own_key(orders), Some(a));
        assert_eq!(member(&[a, b], &[]).own_key(orders), None);
    }

    #[test]
    fn each_role_writes_the_tables_of_its_rank_and_below() {
        let t = tables();
        let d = Uuid::new_v4();
        let as_role = |role| Scope::User {
            id: Uuid::new_v4(),
            distributors: vec![d],
            roles: vec![(d, role)],
        };
        let writes = |role, table: &str| as_role(role).may_write(t.get(table).unwrap(), Some(d));

        assert!(!writes(Role::Viewer, "customers"));
        assert!(writes(Role::Member, "orders"));
        assert!(!writes(Role::Member, "catalog_products"));
        assert!(writes(Role::Admin, "webhook_endpoints"));
        assert!(!writes(Role::Admin, "distributors"));
        assert!(!writes(Role::Admin, "user_profiles"));
        assert!(writes(Role::Owner, "distributors"));
        // Reading does not depend on the role.
        assert!(as_role(Role::Viewer).allows(t.get("catalog_products").unwrap(), Some(d)));
    }

    #[test]
    fn shared_rows_are_read_by_all_and_written_by_the_service_only() {
        let models = tables().get("ai_models").unwrap();
        let shop = Scope::Shop { id: Uuid::new_v4() };

        assert!(shop.allows(models, None));
        assert!(!shop.may_write(models, None));
        assert!(Scope::Service.may_write(models, None));
        assert_eq!(shop.own_key(models), shop_id(&shop));
    }

    #[test]
    fn nobody_and_other_kinds_write_nothing() {
        let products = tables().get("products").unwrap();
        let user = member(&[], &[]);

        assert!(!Scope::Nobody.may_write(products, Some(Uuid::new_v4())));
        assert!(!user.may_write(products, Some(Uuid::new_v4())));
        assert_eq!(user.own_key(products), None);
    }

    fn shop_id(scope: &Scope) -> Option<Uuid> {
        match scope {
            Scope::Shop { id } => Some(*id),
            _ => None,
        }
    }
}
