//! Tiers (seeded with the default ladder), growth, purchases, shop-wide settings, and the
//! member's tier, growth and RFM columns.

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
                    .table(Tier::Table)
                    .col(big_pk_auto(Tier::Id))
                    .col(string_len_uniq(Tier::Code, 32))
                    .col(string_len(Tier::Name, 64))
                    .col(integer_uniq(Tier::Rank))
                    .col(big_integer(Tier::GrowthThreshold))
                    // Decimals as text ("0.95"): exact on every database, SQLite included.
                    .col(string_len(Tier::Discount, 16))
                    .col(string_len(Tier::PointsMultiplier, 16))
                    .col(text(Tier::Benefits))
                    .col(big_integer(Tier::BirthdayGift))
                    .col(utc_time(db, Tier::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        let seed = [
            (
                "normal",
                "普通",
                0,
                0,
                "1.00",
                "1.0",
                r#"["生日积分礼"]"#,
                20,
            ),
            (
                "silver",
                "银卡",
                1,
                1000,
                "0.95",
                "1.2",
                r#"["95折","生日积分礼","积分1.2倍"]"#,
                100,
            ),
            (
                "gold",
                "金卡",
                2,
                5000,
                "0.90",
                "1.5",
                r#"["9折","生日积分礼","积分1.5倍","专属客服"]"#,
                200,
            ),
            (
                "diamond",
                "钻石",
                3,
                20000,
                "0.85",
                "2.0",
                r#"["85折","生日积分礼","积分2倍","专属客服","新品优先购"]"#,
                300,
            ),
        ];
        for (code, name, rank, threshold, discount, multiplier, benefits, gift) in seed {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(Tier::Table)
                        .columns([
                            Tier::Code,
                            Tier::Name,
                            Tier::Rank,
                            Tier::GrowthThreshold,
                            Tier::Discount,
                            Tier::PointsMultiplier,
                            Tier::Benefits,
                            Tier::BirthdayGift,
                            Tier::UpdatedAt,
                        ])
                        .values_panic([
                            code.into(),
                            name.into(),
                            rank.into(),
                            (threshold as i64).into(),
                            discount.into(),
                            multiplier.into(),
                            benefits.into(),
                            (gift as i64).into(),
                            Expr::current_timestamp(),
                        ])
                        .to_owned(),
                )
                .await?;
        }

        for column in [
            big_integer(Member::GrowthValue).default(0).take(),
            string_len_null(Member::TierCode, 32),
            utc_time_null(db, Member::TierValidUntil),
            utc_time_null(db, Member::LastPurchaseAt),
            string_len_null(Member::RfmSegment, 32),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Member::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(GrowthLedger::Table)
                    .col(big_pk_auto(GrowthLedger::Id))
                    .col(big_integer(GrowthLedger::MemberId))
                    .col(big_integer(GrowthLedger::Delta))
                    .col(string_len(GrowthLedger::Source, 32))
                    .col(string_len_null(GrowthLedger::SourceId, 64))
                    .col(utc_time(db, GrowthLedger::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_growth_ledger_member")
                            .from(GrowthLedger::Table, GrowthLedger::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_growth_ledger_member_time")
                    .table(GrowthLedger::Table)
                    .col(GrowthLedger::MemberId)
                    .col(GrowthLedger::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Purchase::Table)
                    .col(big_pk_auto(Purchase::Id))
                    .col(string_len_uniq(Purchase::OrderNo, 64))
                    .col(big_integer(Purchase::MemberId))
                    // Money in fen (1/100 yuan): exact and summable everywhere.
                    .col(big_integer(Purchase::AmountFen))
                    .col(text(Purchase::Lines))
                    .col(big_integer(Purchase::PointsAwarded))
                    .col(big_integer(Purchase::GrowthAwarded))
                    .col(string_len(Purchase::RequestHash, 64))
                    .col(utc_time(db, Purchase::PaidAt))
                    .col(utc_time_null(db, Purchase::RefundedAt))
                    .col(big_integer_null(Purchase::PointsNotRecovered))
                    .col(utc_time(db, Purchase::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_purchase_member")
                            .from(Purchase::Table, Purchase::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_purchase_member_paid")
                    .table(Purchase::Table)
                    .col(Purchase::MemberId)
                    .col(Purchase::PaidAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ShopSetting::Table)
                    .col(string_len(ShopSetting::Key, 64).primary_key())
                    .col(text(ShopSetting::Value))
                    .col(utc_time(db, ShopSetting::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ShopSetting::Table.into_iden(),
            Purchase::Table.into_iden(),
            GrowthLedger::Table.into_iden(),
            Tier::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            Member::RfmSegment,
            Member::LastPurchaseAt,
            Member::TierValidUntil,
            Member::TierCode,
            Member::GrowthValue,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Member::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tier {
    Table,
    Id,
    Code,
    Name,
    Rank,
    GrowthThreshold,
    Discount,
    PointsMultiplier,
    Benefits,
    BirthdayGift,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
    GrowthValue,
    TierCode,
    TierValidUntil,
    LastPurchaseAt,
    RfmSegment,
}

#[derive(DeriveIden)]
enum GrowthLedger {
    Table,
    Id,
    MemberId,
    Delta,
    Source,
    SourceId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Purchase {
    Table,
    Id,
    OrderNo,
    MemberId,
    AmountFen,
    Lines,
    PointsAwarded,
    GrowthAwarded,
    RequestHash,
    PaidAt,
    RefundedAt,
    PointsNotRecovered,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ShopSetting {
    Table,
    Key,
    Value,
    UpdatedAt,
}
