//! The database keeps `customers.last_order_at`: a trigger on `orders` on both backends,
//! so orders made by any workflow, generated write or SQL move it forward alike.

use sea_orm_migration::prelude::*;

use crate::catalog::CUSTOMER_LAST_ORDER_TRIGGER;
use crate::ddl::{Ddl, drop_trigger, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_FUNCTION: &str = "
CREATE OR REPLACE FUNCTION customers_follow_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customers SET last_order_at = GREATEST(last_order_at, NEW.created_at)
    WHERE id = NEW.customer_id;
    RETURN NULL;
END
$$;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let create = if Ddl::of(manager).is_postgres() {
            sql(manager, POSTGRES_FUNCTION).await?;
            format!(
                "CREATE TRIGGER {CUSTOMER_LAST_ORDER_TRIGGER} AFTER INSERT ON orders \
                 FOR EACH ROW EXECUTE FUNCTION customers_follow_orders()"
            )
        } else {
            format!(
                "CREATE TRIGGER {CUSTOMER_LAST_ORDER_TRIGGER} AFTER INSERT ON orders \
                 FOR EACH ROW BEGIN UPDATE customers SET last_order_at = NEW.created_at \
                 WHERE id = NEW.customer_id \
                 AND (last_order_at IS NULL OR last_order_at < NEW.created_at); END"
            )
        };
        sql(manager, &create).await?;
        // Orders made before the trigger.
        sql(
            manager,
            "UPDATE customers SET last_order_at = \
             (SELECT max(created_at) FROM orders WHERE orders.customer_id = customers.id) \
             WHERE EXISTS (SELECT 1 FROM orders WHERE orders.customer_id = customers.id)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_trigger(
            manager,
            CUSTOMER_LAST_ORDER_TRIGGER,
            "orders",
            "customers_follow_orders",
        )
        .await
    }
}
