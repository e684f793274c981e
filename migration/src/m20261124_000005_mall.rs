//! The points mall: items, orders, coupons, price campaigns, crowdfunds and donations.
//! Money is stored in fen (1/100 yuan) as integers.

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
                    .table(MallItem::Table)
                    .col(big_pk_auto(MallItem::Id))
                    .col(string_len(MallItem::Name, 128))
                    .col(text(MallItem::Description))
                    .col(string_len(MallItem::Category, 64))
                    .col(string_len(MallItem::Kind, 16))
                    .col(string_len_null(MallItem::ImageUrl, 512))
                    .col(big_integer(MallItem::PointsPrice))
                    .col(big_integer_null(MallItem::CashPriceFen))
                    .col(big_integer(MallItem::Stock))
                    .col(integer_null(MallItem::PerMemberLimit))
                    .col(integer(MallItem::MinTierRank))
                    .col(utc_time_null(db, MallItem::StartsAt))
                    .col(utc_time_null(db, MallItem::EndsAt))
                    .col(big_integer_null(MallItem::CouponValueFen))
                    .col(big_integer_null(MallItem::CouponThresholdFen))
                    .col(integer_null(MallItem::CouponValidDays))
                    .col(boolean(MallItem::Crowdfundable))
                    .col(boolean(MallItem::Active))
                    .col(utc_time(db, MallItem::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mall_item_category")
                    .table(MallItem::Table)
                    .col(MallItem::Category)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MallOrder::Table)
                    .col(big_pk_auto(MallOrder::Id))
                    .col(big_integer(MallOrder::MemberId))
                    .col(big_integer(MallOrder::ItemId))
                    .col(big_integer(MallOrder::Quantity))
                    .col(big_integer(MallOrder::PointsCost))
                    .col(big_integer(MallOrder::CashDueFen))
                    .col(string_len(MallOrder::Status, 16))
                    .col(string_len_null(MallOrder::IdempotencyKey, 96))
                    .col(string_len(MallOrder::RequestHash, 64))
                    // The lots the points came from, so a cancellation gives them back as they were.
                    .col(text(MallOrder::PointsDraws))
                    .col(string_len_null(MallOrder::TrackingNo, 64))
                    .col(string_len_null(MallOrder::TransactionId, 64))
                    .col(big_integer_null(MallOrder::CrowdfundId))
                    // The merchant's address book entry for physical goods, as the client sent it.
                    .col(string_len_null(MallOrder::AddressId, 64))
                    .col(utc_time_null(db, MallOrder::PayBy))
                    .col(utc_time(db, MallOrder::CreatedAt))
                    .col(utc_time(db, MallOrder::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mall_order_member")
                            .from(MallOrder::Table, MallOrder::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_mall_order_member_key")
                    .table(MallOrder::Table)
                    .col(MallOrder::MemberId)
                    .col(MallOrder::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mall_order_member_item")
                    .table(MallOrder::Table)
                    .col(MallOrder::MemberId)
                    .col(MallOrder::ItemId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mall_order_status_pay_by")
                    .table(MallOrder::Table)
                    .col(MallOrder::Status)
                    .col(MallOrder::PayBy)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Coupon::Table)
                    .col(big_pk_auto(Coupon::Id))
                    .col(big_integer(Coupon::MemberId))
                    .col(big_integer_null(Coupon::OrderId))
                    .col(string_len(Coupon::Name, 128))
                    .col(big_integer(Coupon::ValueFen))
                    .col(big_integer(Coupon::ThresholdFen))
                    .col(utc_time(db, Coupon::ValidFrom))
                    .col(utc_time(db, Coupon::ValidUntil))
                    .col(utc_time_null(db, Coupon::UsedAt))
                    .col(utc_time_null(db, Coupon::RevokedAt))
                    .col(string_len(Coupon::Source, 32))
                    .col(utc_time(db, Coupon::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_coupon_member")
                    .table(Coupon::Table)
                    .col(Coupon::MemberId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PriceCampaign::Table)
                    .col(big_pk_auto(PriceCampaign::Id))
                    .col(string_len(PriceCampaign::Name, 128))
                    .col(string_len(PriceCampaign::Multiplier, 16))
                    .col(utc_time(db, PriceCampaign::StartsAt))
                    .col(utc_time(db, PriceCampaign::EndsAt))
                    .col(utc_time(db, PriceCampaign::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Crowdfund::Table)
                    .col(big_pk_auto(Crowdfund::Id))
                    .col(big_integer(Crowdfund::ItemId))
                    .col(big_integer(Crowdfund::InitiatorId))
                    .col(big_integer(Crowdfund::TargetPoints))
                    .col(big_integer(Crowdfund::RaisedPoints))
                    .col(string_len(Crowdfund::Status, 16))
                    .col(utc_time(db, Crowdfund::Deadline))
                    .col(big_integer_null(Crowdfund::OrderId))
                    .col(utc_time(db, Crowdfund::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrowdfundContribution::Table)
                    .col(big_pk_auto(CrowdfundContribution::Id))
                    .col(big_integer(CrowdfundContribution::CrowdfundId))
                    .col(big_integer(CrowdfundContribution::MemberId))
                    .col(big_integer(CrowdfundContribution::Points))
                    .col(text(CrowdfundContribution::PointsDraws))
                    .col(utc_time_null(db, CrowdfundContribution::RefundedAt))
                    .col(utc_time(db, CrowdfundContribution::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_crowdfund_contribution_pool")
                    .table(CrowdfundContribution::Table)
                    .col(CrowdfundContribution::CrowdfundId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DonationProject::Table)
                    .col(big_pk_auto(DonationProject::Id))
                    .col(string_len(DonationProject::Name, 128))
                    .col(text(DonationProject::Description))
                    .col(big_integer(DonationProject::TargetPoints))
                    .col(big_integer(DonationProject::RaisedPoints))
                    .col(big_integer(DonationProject::DonorCount))
                    .col(boolean(DonationProject::Active))
                    .col(utc_time(db, DonationProject::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DonationDonor::Table)
                    .col(big_pk_auto(DonationDonor::Id))
                    .col(big_integer(DonationDonor::ProjectId))
                    .col(big_integer(DonationDonor::MemberId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_donation_donor")
                    .table(DonationDonor::Table)
                    .col(DonationDonor::ProjectId)
                    .col(DonationDonor::MemberId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DonationDonor::Table.into_iden(),
            DonationProject::Table.into_iden(),
            CrowdfundContribution::Table.into_iden(),
            Crowdfund::Table.into_iden(),
            PriceCampaign::Table.into_iden(),
            Coupon::Table.into_iden(),
            MallOrder::Table.into_iden(),
            MallItem::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MallItem {
    Table,
    Id,
    Name,
    Description,
    Category,
    Kind,
    ImageUrl,
    PointsPrice,
    CashPriceFen,
    Stock,
    PerMemberLimit,
    MinTierRank,
    StartsAt,
    EndsAt,
    CouponValueFen,
    CouponThresholdFen,
    CouponValidDays,
    Crowdfundable,
    Active,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MallOrder {
    Table,
    Id,
    MemberId,
    ItemId,
    Quantity,
    PointsCost,
    CashDueFen,
    Status,
    IdempotencyKey,
    RequestHash,
    PointsDraws,
    TrackingNo,
    TransactionId,
    CrowdfundId,
    AddressId,
    PayBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Coupon {
    Table,
    Id,
    MemberId,
    OrderId,
    Name,
    ValueFen,
    ThresholdFen,
    ValidFrom,
    ValidUntil,
    UsedAt,
    RevokedAt,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PriceCampaign {
    Table,
    Id,
    Name,
    Multiplier,
    StartsAt,
    EndsAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Crowdfund {
    Table,
    Id,
    ItemId,
    InitiatorId,
    TargetPoints,
    RaisedPoints,
    Status,
    Deadline,
    OrderId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CrowdfundContribution {
    Table,
    Id,
    CrowdfundId,
    MemberId,
    Points,
    PointsDraws,
    RefundedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DonationProject {
    Table,
    Id,
    Name,
    Description,
    TargetPoints,
    RaisedPoints,
    DonorCount,
    Active,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DonationDonor {
    Table,
    Id,
    ProjectId,
    MemberId,
}
