//! The achievement wall: achievements (with the count of members who hold each, kept on unlock),
//! unlocks, earned titles, and the member's showcase and worn title.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::columns::utc_time;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Achievement::Table)
                    .col(big_pk_auto(Achievement::Id))
                    .col(string_len_uniq(Achievement::Code, 64))
                    .col(string_len(Achievement::Name, 64))
                    .col(string_len(Achievement::Description, 255))
                    .col(string_len(Achievement::Category, 32))
                    .col(string_len_null(Achievement::IconUrl, 512))
                    .col(string_len(Achievement::Metric, 64))
                    .col(big_integer(Achievement::Threshold))
                    .col(big_integer(Achievement::RewardPoints))
                    .col(string_len_null(Achievement::TitleCode, 64))
                    .col(string_len_null(Achievement::TitleName, 64))
                    .col(boolean(Achievement::Hidden))
                    .col(big_integer(Achievement::UnlockedCount))
                    .col(utc_time(db, Achievement::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemberAchievement::Table)
                    .col(big_pk_auto(MemberAchievement::Id))
                    .col(big_integer(MemberAchievement::MemberId))
                    .col(big_integer(MemberAchievement::AchievementId))
                    .col(utc_time(db, MemberAchievement::UnlockedAt))
                    .to_owned(),
            )
            .await?;
        // One unlock per member and achievement: concurrency never unlocks twice.
        manager
            .create_index(
                Index::create()
                    .name("uq_member_achievement")
                    .table(MemberAchievement::Table)
                    .col(MemberAchievement::MemberId)
                    .col(MemberAchievement::AchievementId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemberTitle::Table)
                    .col(big_pk_auto(MemberTitle::Id))
                    .col(big_integer(MemberTitle::MemberId))
                    .col(string_len(MemberTitle::Code, 64))
                    .col(string_len(MemberTitle::Name, 64))
                    .col(utc_time(db, MemberTitle::GrantedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_member_title")
                    .table(MemberTitle::Table)
                    .col(MemberTitle::MemberId)
                    .col(MemberTitle::Code)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Leaderboards read metrics by name and period, highest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_member_metric_board")
                    .table(MemberMetric::Table)
                    .col(MemberMetric::Metric)
                    .col(MemberMetric::Period)
                    .col(MemberMetric::Value)
                    .to_owned(),
            )
            .await?;
        for column in [
            string_len_null(Member::ActiveTitleCode, 64),
            text_null(Member::Showcase),
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Member::Showcase, Member::ActiveTitleCode] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Member::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_member_metric_board")
                    .table(MemberMetric::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            MemberTitle::Table.into_iden(),
            MemberAchievement::Table.into_iden(),
            Achievement::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Achievement {
    Table,
    Id,
    Code,
    Name,
    Description,
    Category,
    IconUrl,
    Metric,
    Threshold,
    RewardPoints,
    TitleCode,
    TitleName,
    Hidden,
    UnlockedCount,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MemberAchievement {
    Table,
    Id,
    MemberId,
    AchievementId,
    UnlockedAt,
}

#[derive(DeriveIden)]
enum MemberTitle {
    Table,
    Id,
    MemberId,
    Code,
    Name,
    GrantedAt,
}

#[derive(DeriveIden)]
enum MemberMetric {
    Table,
    Metric,
    Period,
    Value,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    ActiveTitleCode,
    Showcase,
}
