use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Short public code shown to friends (transfers, invites).
    #[sea_orm(unique)]
    pub member_no: String,
    #[sea_orm(unique)]
    pub openid: String,
    pub unionid: Option<String>,
    /// WeChat's session key; never leaves the server.
    pub wechat_session_key: Option<String>,
    pub nickname: String,
    pub avatar_url: Option<String>,
    pub birthday: Option<Date>,
    #[sea_orm(unique)]
    pub invite_code: String,
    /// The member whose invite code brought this one in (single level only).
    pub invited_by: Option<i64>,
    pub last_active_at: Option<DateTimeUtc>,
    /// Cached balance; always equals the sum of the member's ledger (see `ledgerAudit`).
    pub points: i64,
    pub blacklisted_at: Option<DateTimeUtc>,
    pub blacklist_reason: Option<String>,
    pub blacklisted_by: Option<String>,
    /// Lifetime growth value (tiers follow the last 12 months, from `growth_ledger`).
    pub growth_value: i64,
    /// None: the base tier.
    pub tier_code: Option<String>,
    pub tier_valid_until: Option<DateTimeUtc>,
    pub last_purchase_at: Option<DateTimeUtc>,
    pub rfm_segment: Option<String>,
    /// The earned title worn on the profile.
    pub active_title_code: Option<String>,
    /// JSON array of up to 6 achievement codes, in order.
    #[sea_orm(column_type = "Text", nullable)]
    pub showcase: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
