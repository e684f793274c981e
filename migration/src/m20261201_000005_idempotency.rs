//! One table for every request that must take effect once (the use-case runner,
//! `api::idempotency`), filled at once with the requests earlier versions recorded on their own
//! rows (ledger entries, orders, check-ins, reported events), so a retry that spans the upgrade
//! still replays instead of running twice.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::columns::utc_time;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecord::Table)
                    .col(big_pk_auto(IdempotencyRecord::Id))
                    .col(big_integer(IdempotencyRecord::MemberId))
                    .col(string_len(IdempotencyRecord::Scope, 16))
                    .col(string_len(IdempotencyRecord::Key, 64))
                    .col(string_len(IdempotencyRecord::Fingerprint, 64))
                    .col(text(IdempotencyRecord::Response))
                    .col(utc_time(backend, IdempotencyRecord::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idempotency_record")
                    .table(IdempotencyRecord::Table)
                    .col(IdempotencyRecord::MemberId)
                    .col(IdempotencyRecord::Scope)
                    .col(IdempotencyRecord::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in carry_over(backend) {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyRecord::Table).to_owned())
            .await
    }
}

/// `INSERT … SELECT`s that copy the requests earlier versions kept on their own rows. Keys were
/// stored scoped (`transfer:<key>`); the record keeps the scope and the bare key.
fn carry_over(backend: DatabaseBackend) -> Vec<String> {
    let json = |field: &str, value: &str| match backend {
        DatabaseBackend::MySql => format!("CONCAT('{{\"{field}\":', {value}, '}}')"),
        _ => format!("'{{\"{field}\":' || {value} || '}}'"),
    };
    let insert = "INSERT INTO idempotency_record \
        (member_id, scope, \"key\", fingerprint, response, created_at)";
    let insert = match backend {
        DatabaseBackend::MySql => insert.replace('"', "`"),
        _ => insert.to_string(),
    };
    let from_ledger = |scope: &str, field: &str, value: &str| {
        let prefix = format!("{scope}:");
        format!(
            "{insert} SELECT member_id, '{scope}', SUBSTR(idempotency_key, {start}), \
             COALESCE(request_hash, ''), {response}, created_at FROM points_ledger \
             WHERE idempotency_key LIKE '{prefix}%' AND request_hash IS NOT NULL",
            start = prefix.len() + 1,
            response = json(field, value),
        )
    };
    vec![
        from_ledger("transfer", "ledgerId", "id"),
        from_ledger("adjust", "ledgerId", "id"),
        from_ledger("donate", "projectId", "source_id"),
        from_ledger("crowdfund", "crowdfundId", "source_id"),
        from_ledger("draw", "ledgerId", "id"),
        format!(
            "{insert} SELECT member_id, 'redeem', SUBSTR(idempotency_key, 8), request_hash, {}, \
             created_at FROM mall_order WHERE idempotency_key LIKE 'redeem:%'",
            json("orderId", "id")
        ),
        format!(
            "{insert} SELECT member_id, CASE WHEN made_up THEN 'makeup' ELSE 'checkin' END, \
             SUBSTR(idempotency_key, 9), '', {}, created_at FROM checkin \
             WHERE idempotency_key LIKE 'checkin:%'",
            json("checkinId", "id")
        ),
        format!(
            "{insert} SELECT member_id, 'report', SUBSTR(target_id, 8), '', '{{}}', created_at \
             FROM reported_event WHERE kind = 'key' AND target_id LIKE 'report:%'"
        ),
    ]
}

#[derive(DeriveIden)]
enum IdempotencyRecord {
    Table,
    Id,
    MemberId,
    Scope,
    Key,
    Fingerprint,
    Response,
    CreatedAt,
}
