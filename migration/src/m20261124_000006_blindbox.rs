//! Blind boxes: boxes, their prizes, commit-reveal seeds, draws and pity counters.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::columns::{utc_time, utc_time_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(BlindBox::Table)
                    .col(big_pk_auto(BlindBox::Id))
                    .col(string_len(BlindBox::Name, 128))
                    .col(text(BlindBox::Description))
                    .col(big_integer(BlindBox::PointsPrice))
                    .col(integer_null(BlindBox::DailyLimit))
                    .col(integer_null(BlindBox::PityThreshold))
                    .col(boolean(BlindBox::Active))
                    .col(big_integer(BlindBox::SeedId))
                    // The next nonce: each draw takes one, so no two draws of a box share one.
                    .col(big_integer(BlindBox::NextNonce))
                    .col(utc_time(db, BlindBox::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BlindBoxPrize::Table)
                    .col(big_pk_auto(BlindBoxPrize::Id))
                    .col(big_integer(BlindBoxPrize::BoxId))
                    .col(integer(BlindBoxPrize::Position))
                    .col(string_len(BlindBoxPrize::Name, 128))
                    .col(string_len(BlindBoxPrize::Rarity, 16))
                    .col(string_len(BlindBoxPrize::Kind, 16))
                    .col(big_integer(BlindBoxPrize::Weight))
                    .col(big_integer_null(BlindBoxPrize::Stock))
                    .col(string_len(BlindBoxPrize::Payload, 128))
                    // Prizes replaced by an edit are retired, not deleted: past draws name them.
                    .col(boolean(BlindBoxPrize::Retired))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_blind_box_prize_box")
                    .table(BlindBoxPrize::Table)
                    .col(BlindBoxPrize::BoxId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BlindBoxSeed::Table)
                    .col(big_pk_auto(BlindBoxSeed::Id))
                    .col(big_integer(BlindBoxSeed::BoxId))
                    .col(string_len(BlindBoxSeed::Seed, 64))
                    .col(string_len(BlindBoxSeed::Commitment, 64))
                    .col(utc_time_null(db, BlindBoxSeed::RevealedAt))
                    .col(utc_time(db, BlindBoxSeed::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BlindBoxDraw::Table)
                    .col(big_pk_auto(BlindBoxDraw::Id))
                    .col(big_integer(BlindBoxDraw::BoxId))
                    .col(big_integer(BlindBoxDraw::MemberId))
                    .col(big_integer(BlindBoxDraw::PrizeId))
                    .col(boolean(BlindBoxDraw::Pity))
                    .col(big_integer(BlindBoxDraw::SeedId))
                    .col(big_integer(BlindBoxDraw::Nonce))
                    // The pool the draw was taken from, [[prizeId, weight], ...], for verification.
                    .col(text(BlindBoxDraw::Pool))
                    .col(string_len(BlindBoxDraw::BatchKey, 96))
                    .col(utc_time(db, BlindBoxDraw::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_blind_box_draw_member")
                    .table(BlindBoxDraw::Table)
                    .col(BlindBoxDraw::MemberId)
                    .col(BlindBoxDraw::BoxId)
                    .col(BlindBoxDraw::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BlindBoxPity::Table)
                    .col(big_pk_auto(BlindBoxPity::Id))
                    .col(big_integer(BlindBoxPity::MemberId))
                    .col(big_integer(BlindBoxPity::BoxId))
                    .col(big_integer(BlindBoxPity::Count))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_blind_box_pity")
                    .table(BlindBoxPity::Table)
                    .col(BlindBoxPity::MemberId)
                    .col(BlindBoxPity::BoxId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BlindBoxPity::Table.into_iden(),
            BlindBoxDraw::Table.into_iden(),
            BlindBoxSeed::Table.into_iden(),
            BlindBoxPrize::Table.into_iden(),
            BlindBox::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum BlindBox {
    Table,
    Id,
    Name,
    Description,
    PointsPrice,
    DailyLimit,
    PityThreshold,
    Active,
    SeedId,
    NextNonce,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BlindBoxPrize {
    Table,
    Id,
    BoxId,
    Position,
    Name,
    Rarity,
    Kind,
    Weight,
    Stock,
    Payload,
    Retired,
}

#[derive(DeriveIden)]
enum BlindBoxSeed {
    Table,
    Id,
    BoxId,
    Seed,
    Commitment,
    RevealedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BlindBoxDraw {
    Table,
    Id,
    BoxId,
    MemberId,
    PrizeId,
    Pity,
    SeedId,
    Nonce,
    Pool,
    BatchKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BlindBoxPity {
    Table,
    Id,
    MemberId,
    BoxId,
    Count,
}
