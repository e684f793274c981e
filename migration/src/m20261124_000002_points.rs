//! The points ledger and its lots, the member's cached balance and blacklist, risk events,
//! member metrics for the progress fan-out, and the job lease.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::columns::{utc_time, utc_time_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // SQLite takes one column per ALTER TABLE.
        for column in [
            big_integer(Member::Points).default(0).take(),
            utc_time_null(db, Member::BlacklistedAt),
            string_len_null(Member::BlacklistReason, 255),
            string_len_null(Member::BlacklistedBy, 64),
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
                    .table(PointsLedger::Table)
                    .col(big_pk_auto(PointsLedger::Id))
                    .col(big_integer(PointsLedger::MemberId))
                    .col(big_integer(PointsLedger::Delta))
                    .col(big_integer(PointsLedger::BalanceAfter))
                    .col(string_len(PointsLedger::Kind, 16))
                    .col(string_len(PointsLedger::Source, 32))
                    .col(string_len_null(PointsLedger::SourceId, 64))
                    .col(string_len_null(PointsLedger::Note, 255))
                    .col(string_len_null(PointsLedger::IdempotencyKey, 96))
                    .col(string_len_null(PointsLedger::RequestHash, 64))
                    .col(utc_time_null(db, PointsLedger::ExpiresAt))
                    .col(utc_time(db, PointsLedger::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_points_ledger_member")
                            .from(PointsLedger::Table, PointsLedger::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // A retried mutation finds its first result here; a concurrent duplicate fails here.
        manager
            .create_index(
                Index::create()
                    .name("uq_points_ledger_member_key")
                    .table(PointsLedger::Table)
                    .col(PointsLedger::MemberId)
                    .col(PointsLedger::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_points_ledger_created")
                    .table(PointsLedger::Table)
                    .col(PointsLedger::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PointsLot::Table)
                    .col(big_pk_auto(PointsLot::Id))
                    .col(big_integer(PointsLot::MemberId))
                    .col(big_integer(PointsLot::LedgerId))
                    .col(big_integer(PointsLot::Amount))
                    .col(big_integer(PointsLot::Remaining))
                    .col(utc_time(db, PointsLot::ExpiresAt))
                    .col(utc_time_null(db, PointsLot::ExpiredAt))
                    .col(utc_time(db, PointsLot::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_points_lot_member")
                            .from(PointsLot::Table, PointsLot::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_points_lot_member_expiry")
                    .table(PointsLot::Table)
                    .col(PointsLot::MemberId)
                    .col(PointsLot::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_points_lot_expiry")
                    .table(PointsLot::Table)
                    .col(PointsLot::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RiskEvent::Table)
                    .col(big_pk_auto(RiskEvent::Id))
                    .col(big_integer_null(RiskEvent::MemberId))
                    .col(string_len_null(RiskEvent::DeviceId, 128))
                    .col(string_len(RiskEvent::Rule, 64))
                    .col(text(RiskEvent::Detail))
                    .col(string_len(RiskEvent::Status, 16))
                    .col(string_len_null(RiskEvent::ResolvedBy, 64))
                    .col(string_len_null(RiskEvent::ResolutionNote, 255))
                    .col(utc_time_null(db, RiskEvent::ResolvedAt))
                    .col(utc_time(db, RiskEvent::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_risk_event_status")
                    .table(RiskEvent::Table)
                    .col(RiskEvent::Status)
                    .col(RiskEvent::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MemberMetric::Table)
                    .col(big_pk_auto(MemberMetric::Id))
                    .col(big_integer(MemberMetric::MemberId))
                    .col(string_len(MemberMetric::Metric, 64))
                    .col(string_len(MemberMetric::Period, 16))
                    .col(big_integer(MemberMetric::Value))
                    .col(utc_time(db, MemberMetric::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_member_metric")
                    .table(MemberMetric::Table)
                    .col(MemberMetric::MemberId)
                    .col(MemberMetric::Metric)
                    .col(MemberMetric::Period)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobLease::Table)
                    .col(string_len(JobLease::Name, 64).primary_key())
                    .col(string_len(JobLease::Holder, 64))
                    .col(utc_time(db, JobLease::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            JobLease::Table.into_iden(),
            MemberMetric::Table.into_iden(),
            RiskEvent::Table.into_iden(),
            PointsLot::Table.into_iden(),
            PointsLedger::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            Member::BlacklistedBy,
            Member::BlacklistReason,
            Member::BlacklistedAt,
            Member::Points,
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
enum Member {
    Table,
    Id,
    Points,
    BlacklistedAt,
    BlacklistReason,
    BlacklistedBy,
}

#[derive(DeriveIden)]
enum PointsLedger {
    Table,
    Id,
    MemberId,
    Delta,
    BalanceAfter,
    Kind,
    Source,
    SourceId,
    Note,
    IdempotencyKey,
    RequestHash,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PointsLot {
    Table,
    Id,
    MemberId,
    LedgerId,
    Amount,
    Remaining,
    ExpiresAt,
    ExpiredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RiskEvent {
    Table,
    Id,
    MemberId,
    DeviceId,
    Rule,
    Detail,
    Status,
    ResolvedBy,
    ResolutionNote,
    ResolvedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MemberMetric {
    Table,
    Id,
    MemberId,
    Metric,
    Period,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum JobLease {
    Table,
    Name,
    Holder,
    ExpiresAt,
}
