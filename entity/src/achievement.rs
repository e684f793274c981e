use sea_orm::entity::prelude::*;

/// A badge members unlock when a metric reaches a threshold.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "achievement")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub icon_url: Option<String>,
    /// The member metric it watches (progress keeps it), e.g. checkin.streak.
    pub metric: String,
    pub threshold: i64,
    pub reward_points: i64,
    pub title_code: Option<String>,
    pub title_name: Option<String>,
    pub hidden: bool,
    /// Members who hold it, kept on unlock so rarity costs no scan.
    pub unlocked_count: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
