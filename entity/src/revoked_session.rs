use sea_orm::entity::prelude::*;

/// A session (a login's refresh-token family) ended before its access tokens expired, by
/// `logout` or by reuse of a spent refresh token. Kept until the last of those tokens would
/// have expired; until then every instance refuses them.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revoked_session")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    pub member_id: i64,
    pub revoked_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
