use sea_orm::entity::prelude::*;

/// One row per admin mutation: who, what, with which input, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub admin_id: Option<i64>,
    pub admin_username: String,
    pub action: String,
    /// JSON text (kept as text so it reads the same on SQLite, PostgreSQL and MySQL).
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
