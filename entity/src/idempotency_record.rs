use sea_orm::entity::prelude::*;

/// A member's request that must take effect once: `(member_id, scope, key)` is unique. A retry
/// with the same request (`fingerprint`) is answered from `response`, what the first run
/// stored to rebuild its answer; another request under the key is CONFLICT.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_record")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request's input; empty for records carried over from before the
    /// fingerprint was kept (they replay for any input).
    pub fingerprint: String,
    /// JSON the use case stored to rebuild its answer (ids of what it made).
    #[sea_orm(column_type = "Text")]
    pub response: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
