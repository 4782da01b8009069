//! User invitations: an invitation to join a distributor with a role, redeemed with a
//! one-time token (seed 003's `user_invitations`). Only the token's hash is stored.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The invitee's address, lower-case.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub email: String,
    /// The role the invitee gets on accepting: `owner`, `admin`, `member` or `viewer`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub role: String,
    /// Hash of the invitation token sent by email; unique. The token itself is never stored.
    #[sea_orm(unique, column_type = "String(StringLen::N(255))")]
    pub token_hash: String,
    /// The user who sent the invitation; null once that user is deleted.
    pub invited_by: Option<Uuid>,
    /// After this instant the invitation can no longer be accepted.
    pub expires_at: DateTimeUtc,
    /// When the invitation was accepted; null while pending.
    pub accepted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "invited_by", to = "id")]
    pub inviter: BelongsTo<Option<crate::accounts::users::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
