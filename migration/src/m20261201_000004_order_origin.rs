//! Where a mall order came from (a redemption, a funded crowdfund or a blind-box prize): what a
//! member may cancel depends on it. Existing rows are classified by the keys they were written
//! with: redemptions carry a `redeem:` key, crowdfunds their pool, prizes the draw's key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MallOrder::Table)
                    .add_column(
                        ColumnDef::new(MallOrder::Origin)
                            .string_len(16)
                            .not_null()
                            .default("REDEMPTION"),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE mall_order SET origin = 'CROWDFUND' WHERE crowdfund_id IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE mall_order SET origin = 'PRIZE' WHERE crowdfund_id IS NULL \
             AND (idempotency_key IS NULL OR idempotency_key NOT LIKE 'redeem:%')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MallOrder::Table)
                    .drop_column(MallOrder::Origin)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum MallOrder {
    Table,
    Origin,
}
