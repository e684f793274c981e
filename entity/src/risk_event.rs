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
    pub status: RiskStatus,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

crate::stored_enum! {
    /// An event is open until an operator dismisses it or acts on it (blacklists its member).
    pub enum RiskStatus {
        Open = "OPEN",
        Dismissed = "DISMISSED",
        Actioned = "ACTIONED",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
