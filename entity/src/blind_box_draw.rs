use sea_orm::entity::prelude::*;

/// One draw and what it gave.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box_draw")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub box_id: i64,
    pub member_id: i64,
    pub prize_id: i64,
    pub pity: bool,
    pub seed_id: i64,
    /// The box's draw sequence number. Draws without a member nonce used it in their HMAC.
    pub nonce: i64,
    /// The member's nonce in the HMAC message; null for draws made before per-member nonces.
    pub member_nonce: Option<i64>,
    /// The member's client seed in the HMAC message; null as `member_nonce`.
    pub client_seed: Option<String>,
    /// JSON `[[prizeId, weight], ...]`: the pool this draw was taken from.
    #[sea_orm(column_type = "Text")]
    pub pool: String,
    /// The idempotency key of the request that made it (one per batch of draws).
    pub batch_key: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
