//! Daily check-ins (one per member per business day), tasks and their per-period progress,
//! hidden tasks unlocked per member, and client-reported events seen (for de-duplication).

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
                    .table(Checkin::Table)
                    .col(big_pk_auto(Checkin::Id))
                    .col(big_integer(Checkin::MemberId))
                    .col(date(Checkin::Day))
                    .col(boolean(Checkin::MadeUp))
                    .col(big_integer(Checkin::Points))
                    .col(big_integer(Checkin::StreakBonus))
                    .col(integer(Checkin::Streak))
                    .col(string_len_null(Checkin::IdempotencyKey, 64))
                    .col(utc_time(db, Checkin::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_checkin_member")
                            .from(Checkin::Table, Checkin::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One check-in per member per business day: double taps meet here.
        manager
            .create_index(
                Index::create()
                    .name("uq_checkin_member_day")
                    .table(Checkin::Table)
                    .col(Checkin::MemberId)
                    .col(Checkin::Day)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Task::Table)
                    .col(big_pk_auto(Task::Id))
                    .col(string_len_uniq(Task::Code, 64))
                    .col(string_len(Task::Name, 64))
                    .col(string_len(Task::Description, 255))
                    .col(string_len(Task::Kind, 16))
                    .col(string_len(Task::Event, 64))
                    .col(big_integer(Task::Target))
                    .col(big_integer(Task::RewardPoints))
                    .col(boolean(Task::Active))
                    .col(utc_time_null(db, Task::StartsAt))
                    .col(utc_time_null(db, Task::EndsAt))
                    .col(integer_null(Task::MinTierRank))
                    .col(string_len_null(Task::AudienceSegment, 32))
                    .col(utc_time(db, Task::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskProgress::Table)
                    .col(big_pk_auto(TaskProgress::Id))
                    .col(big_integer(TaskProgress::MemberId))
                    .col(big_integer(TaskProgress::TaskId))
                    .col(string_len(TaskProgress::Period, 16))
                    .col(big_integer(TaskProgress::Progress))
                    .col(utc_time_null(db, TaskProgress::CompletedAt))
                    .col(utc_time_null(db, TaskProgress::ClaimedAt))
                    .col(utc_time(db, TaskProgress::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_task_progress")
                    .table(TaskProgress::Table)
                    .col(TaskProgress::MemberId)
                    .col(TaskProgress::TaskId)
                    .col(TaskProgress::Period)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskUnlock::Table)
                    .col(big_pk_auto(TaskUnlock::Id))
                    .col(big_integer(TaskUnlock::MemberId))
                    .col(big_integer(TaskUnlock::TaskId))
                    .col(utc_time(db, TaskUnlock::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_task_unlock")
                    .table(TaskUnlock::Table)
                    .col(TaskUnlock::MemberId)
                    .col(TaskUnlock::TaskId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReportedEvent::Table)
                    .col(big_pk_auto(ReportedEvent::Id))
                    .col(big_integer(ReportedEvent::MemberId))
                    .col(string_len(ReportedEvent::Kind, 64))
                    .col(string_len(ReportedEvent::TargetId, 128))
                    .col(string_len(ReportedEvent::Period, 16))
                    .col(utc_time(db, ReportedEvent::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_reported_event")
                    .table(ReportedEvent::Table)
                    .col(ReportedEvent::MemberId)
                    .col(ReportedEvent::Kind)
                    .col(ReportedEvent::TargetId)
                    .col(ReportedEvent::Period)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReportedEvent::Table.into_iden(),
            TaskUnlock::Table.into_iden(),
            TaskProgress::Table.into_iden(),
            Task::Table.into_iden(),
            Checkin::Table.into_iden(),
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
enum Checkin {
    Table,
    Id,
    MemberId,
    Day,
    MadeUp,
    Points,
    StreakBonus,
    Streak,
    IdempotencyKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Task {
    Table,
    Id,
    Code,
    Name,
    Description,
    Kind,
    Event,
    Target,
    RewardPoints,
    Active,
    StartsAt,
    EndsAt,
    MinTierRank,
    AudienceSegment,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskProgress {
    Table,
    Id,
    MemberId,
    TaskId,
    Period,
    Progress,
    CompletedAt,
    ClaimedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskUnlock {
    Table,
    Id,
    MemberId,
    TaskId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ReportedEvent {
    Table,
    Id,
    MemberId,
    Kind,
    TargetId,
    Period,
    CreatedAt,
}
