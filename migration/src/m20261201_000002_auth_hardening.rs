//! Authentication hardening: sessions ended before their access tokens expire (logout, a
//! refresh-token family revoked on reuse). A row lives until the session's last access token
//! would have expired; every instance refuses those tokens.

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
                    .table(RevokedSession::Table)
                    .col(string_len(RevokedSession::SessionId, 36).primary_key())
                    .col(big_integer(RevokedSession::MemberId))
                    .col(utc_time(db, RevokedSession::RevokedAt))
                    .col(utc_time(db, RevokedSession::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_session_expires_at")
                    .table(RevokedSession::Table)
                    .col(RevokedSession::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedSession::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RevokedSession {
    Table,
    SessionId,
    MemberId,
    RevokedAt,
    ExpiresAt,
}
