//! Inbound messages: the database keeps each conversation's `unread_count` and
//! `last_message_at` (a trigger on `messages`, on both backends, so rows inserted by SQL
//! stay right too); `messages.body_redacted` holds the body with its PII masked; and
//! `pii_detections.kind` also takes `iban`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::catalog::MESSAGE_COUNTS_TRIGGER;
use crate::ddl::{Ddl, drop_trigger, replace_check, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const KINDS_BEFORE: &str =
    "kind IN ('email', 'phone', 'address', 'credit_card', 'national_id', 'other')";
const KINDS_AFTER: &str =
    "kind IN ('email', 'phone', 'address', 'credit_card', 'iban', 'national_id', 'other')";

/// A new message moves its conversation's last activity forward, and an inbound one adds
/// to its unread count.
const POSTGRES_TRIGGER: &str = "
CREATE OR REPLACE FUNCTION conversations_follow_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations
    SET last_message_at = GREATEST(last_message_at, coalesce(NEW.sent_at, NEW.created_at)),
        unread_count = unread_count + CASE WHEN NEW.direction = 'inbound' THEN 1 ELSE 0 END
    WHERE id = NEW.conversation_id;
    RETURN NULL;
END
$$;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_check(
            manager,
            "pii_detections",
            "pii_detections_kind_check",
            KINDS_AFTER,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("messages")
                    .add_column(text_null("body_redacted"))
                    .to_owned(),
            )
            .await?;
        if Ddl::of(manager).is_postgres() {
            sql(manager, POSTGRES_TRIGGER).await?;
            sql(
                manager,
                &format!(
                    "CREATE TRIGGER {MESSAGE_COUNTS_TRIGGER} AFTER INSERT ON messages \
                     FOR EACH ROW EXECUTE FUNCTION conversations_follow_messages()"
                ),
            )
            .await
        } else {
            let at = "coalesce(NEW.sent_at, NEW.created_at)";
            sql(
                manager,
                &format!(
                    "CREATE TRIGGER {MESSAGE_COUNTS_TRIGGER} AFTER INSERT ON messages \
                     FOR EACH ROW BEGIN UPDATE conversations SET \
                     last_message_at = CASE WHEN last_message_at IS NULL \
                     OR last_message_at < {at} THEN {at} ELSE last_message_at END, \
                     unread_count = unread_count + (NEW.direction = 'inbound') \
                     WHERE id = NEW.conversation_id; END"
                ),
            )
            .await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_trigger(
            manager,
            MESSAGE_COUNTS_TRIGGER,
            "messages",
            "conversations_follow_messages",
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("messages")
                    .drop_column("body_redacted")
                    .to_owned(),
            )
            .await?;
        replace_check(
            manager,
            "pii_detections",
            "pii_detections_kind_check",
            KINDS_BEFORE,
        )
        .await
    }

    // SQLite edits its schema on one connection, inside one transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
