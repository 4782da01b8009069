//! External integrations' API keys: `externalIntegrationKeyIssue` (admins) gives an
//! integration the key its bridge delivers inbound messages with (`messageReceive`),
//! shown once; issuing again replaces the key.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use super::acting_for;
use crate::auth::integrations;
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// A key issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The integration.
    pub integration: Uuid,
    /// The key, shown this once.
    pub key: String,
}

/// Issues a new key for `integration` (admins of its distributor), replacing any before.
pub async fn issue_key(ctx: &WriteCtx<'_>, integration: Uuid) -> ApiResult<Issued> {
    let table = tables().named("external_integrations")?;
    let mut find = Query::select();
    find.from(table.name)
        .column("distributor_id")
        .and_where(Expr::col("id").eq(integration))
        .cond_where(ctx.scope.condition(table)?);
    let distributor: Uuid = match ctx.db.query_one(&find).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => {
            return Err(ApiError::refused(
                "input.integrationId",
                InputCode::NotFound,
                "no such integration",
            ));
        }
    };
    acting_for(ctx, table.name, "input.integrationId", Some(distributor))?;
    let (key, stored) = integrations::generate();
    let mut update = Query::update();
    update
        .table(table.name)
        .value("api_key_hash", stored)
        .and_where(Expr::col("id").eq(integration));
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update(table.name, integration, Some(distributor)));
    Ok(Issued { integration, key })
}
