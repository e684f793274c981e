//! Members, their refresh tokens, admin users and the admin audit log.

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
                    .table(Member::Table)
                    .col(big_pk_auto(Member::Id))
                    .col(string_len_uniq(Member::MemberNo, 16))
                    .col(string_len_uniq(Member::Openid, 64))
                    .col(string_len_null(Member::Unionid, 64))
                    .col(string_len_null(Member::WechatSessionKey, 128))
                    .col(string_len(Member::Nickname, 64))
                    .col(string_len_null(Member::AvatarUrl, 512))
                    .col(date_null(Member::Birthday))
                    .col(string_len_uniq(Member::InviteCode, 16))
                    .col(big_integer_null(Member::InvitedBy))
                    .col(utc_time_null(db, Member::LastActiveAt))
                    .col(utc_time(db, Member::CreatedAt))
                    .col(utc_time(db, Member::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_member_invited_by")
                            .from(Member::Table, Member::InvitedBy)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .col(big_pk_auto(RefreshToken::Id))
                    .col(big_integer(RefreshToken::MemberId))
                    .col(string_len(RefreshToken::FamilyId, 36))
                    .col(string_len_uniq(RefreshToken::TokenHash, 64))
                    .col(utc_time(db, RefreshToken::ExpiresAt))
                    .col(utc_time_null(db, RefreshToken::RevokedAt))
                    .col(utc_time(db, RefreshToken::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_token_member")
                            .from(RefreshToken::Table, RefreshToken::MemberId)
                            .to(Member::Table, Member::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_token_family")
                    .table(RefreshToken::Table)
                    .col(RefreshToken::FamilyId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AdminUser::Table)
                    .col(big_pk_auto(AdminUser::Id))
                    .col(string_len_uniq(AdminUser::Username, 64))
                    .col(string_len(AdminUser::PasswordHash, 256))
                    .col(string_len(AdminUser::Role, 16))
                    .col(utc_time(db, AdminUser::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(big_integer_null(AuditLog::AdminId))
                    .col(string_len(AuditLog::AdminUsername, 64))
                    .col(string_len(AuditLog::Action, 64))
                    .col(text(AuditLog::Detail))
                    .col(utc_time(db, AuditLog::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            AdminUser::Table.into_iden(),
            RefreshToken::Table.into_iden(),
            Member::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

// Variant names are column names; `member_no` starts with the table's name.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
    MemberNo,
    Openid,
    Unionid,
    WechatSessionKey,
    Nickname,
    AvatarUrl,
    Birthday,
    InviteCode,
    InvitedBy,
    LastActiveAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshToken {
    Table,
    Id,
    MemberId,
    FamilyId,
    TokenHash,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdminUser {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    AdminId,
    AdminUsername,
    Action,
    Detail,
    CreatedAt,
}
