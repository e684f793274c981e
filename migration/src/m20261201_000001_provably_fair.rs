//! Provably fair blind boxes: a seed commits to the prize table as well as the seed, and each
//! draw is keyed by the member's client seed and a per-member nonce.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::columns::utc_time;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // The canonical prize table the seed's commitment covers; null for seeds committed
        // before this change (their commitment covers the seed alone).
        manager
            .alter_table(
                Table::alter()
                    .table(BlindBoxSeed::Table)
                    .add_column(text_null(BlindBoxSeed::PrizeTable))
                    .to_owned(),
            )
            .await?;
        // One ALTER per column: SQLite adds one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(BlindBoxDraw::Table)
                    .add_column(big_integer_null(BlindBoxDraw::MemberNonce))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(BlindBoxDraw::Table)
                    .add_column(string_len_null(BlindBoxDraw::ClientSeed, 64))
                    .to_owned(),
            )
            .await?;
        // A member's nonce is never used twice (older draws have none, and NULLs do not clash).
        manager
            .create_index(
                Index::create()
                    .name("uq_blind_box_draw_member_nonce")
                    .table(BlindBoxDraw::Table)
                    .col(BlindBoxDraw::MemberId)
                    .col(BlindBoxDraw::MemberNonce)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BlindBoxClientSeed::Table)
                    .col(big_pk_auto(BlindBoxClientSeed::Id))
                    .col(big_integer_uniq(BlindBoxClientSeed::MemberId))
                    .col(string_len(BlindBoxClientSeed::ClientSeed, 64))
                    // The member's next nonce, across all boxes: each draw takes one.
                    .col(big_integer(BlindBoxClientSeed::NextNonce))
                    .col(utc_time(db, BlindBoxClientSeed::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BlindBoxClientSeed::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_blind_box_draw_member_nonce")
                    .table(BlindBoxDraw::Table)
                    .to_owned(),
            )
            .await?;
        for column in [BlindBoxDraw::ClientSeed, BlindBoxDraw::MemberNonce] {
            manager
                .alter_table(
                    Table::alter()
                        .table(BlindBoxDraw::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(BlindBoxSeed::Table)
                    .drop_column(BlindBoxSeed::PrizeTable)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum BlindBoxSeed {
    Table,
    PrizeTable,
}

#[derive(DeriveIden)]
enum BlindBoxDraw {
    Table,
    MemberId,
    MemberNonce,
    ClientSeed,
}

#[derive(DeriveIden)]
enum BlindBoxClientSeed {
    Table,
    Id,
    MemberId,
    ClientSeed,
    NextNonce,
    UpdatedAt,
}
