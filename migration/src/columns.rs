//! Column helpers shared by migrations. Changing one changes what old migrations create on a
//! fresh database, so add new helpers instead of editing these.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// A UTC instant with microseconds: `timestamptz` on PostgreSQL, text on SQLite, and
/// `datetime(6)` on MySQL/MariaDB, whose `timestamp` would drop the fraction and stop in 2038.
pub fn utc_time<T: IntoIden>(backend: DatabaseBackend, name: T) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    match backend {
        DatabaseBackend::MySql => col.custom(Alias::new("datetime(6)")),
        _ => col.timestamp_with_time_zone(),
    };
    col.not_null().take()
}

pub fn utc_time_null<T: IntoIden>(backend: DatabaseBackend, name: T) -> ColumnDef {
    let mut col = utc_time(backend, name);
    col.null().take()
}
