use sea_orm::entity::prelude::*;

/// Something an anti-cheat rule flagged for an operator to review.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "risk_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: Option<i64>,
    pub device_id: Option<String>,
    pub rule: String,
    /// JSON text.
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    /// OPEN | DISMISSED | ACTIONED
    pub status: String,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
