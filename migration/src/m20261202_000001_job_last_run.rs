//! When each scheduled job last ran, kept with its lease, so a fleet of instances runs a job
//! once per interval instead of once per instance per interval (used when there is no Redis;
//! with Redis the time sits beside the lease key).

use sea_orm_migration::prelude::*;

use crate::columns::utc_time_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .alter_table(
                Table::alter()
                    .table(JobLease::Table)
                    .add_column(utc_time_null(backend, JobLease::LastRunAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(JobLease::Table)
                    .drop_column(JobLease::LastRunAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum JobLease {
    Table,
    LastRunAt,
}
