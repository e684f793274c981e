//! SeaORM entities, one file per table. These are storage shapes, not API types:
//! each module maps them to its own GraphQL types. Status and kind columns are enums
//! (`DeriveActiveEnum`): a value the code does not know fails to load instead of passing as a
//! default.

/// A status or kind column: an enum stored as its name (`DeriveActiveEnum`), with `as_str` (the
/// name, as stored and as the API shows it) and `parse` (a name as an operator types it, in any
/// letter case). Each variant's name is written once.
#[macro_export]
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter, sea_orm::DeriveActiveEnum,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
        pub enum $name {
            $($(#[$variant_meta])* #[sea_orm(string_value = $value)] $variant),*
        }

        impl $name {
            /// The name stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),*
                }
            }

            /// The variant an input names, in any letter case.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                [$($name::$variant),*]
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }
    };
}

pub mod achievement;
pub mod admin_user;
pub mod audit_log;
pub mod blind_box;
pub mod blind_box_client_seed;
pub mod blind_box_draw;
pub mod blind_box_pity;
pub mod blind_box_prize;
pub mod blind_box_seed;
pub mod checkin;
pub mod coupon;
pub mod crowdfund;
pub mod crowdfund_contribution;
pub mod donation_donor;
pub mod donation_project;
pub mod growth_ledger;
pub mod idempotency_record;
pub mod job_lease;
pub mod mall_item;
pub mod mall_order;
pub mod member;
pub mod member_achievement;
pub mod member_metric;
pub mod member_title;
pub mod points_ledger;
pub mod points_lot;
pub mod price_campaign;
pub mod purchase;
pub mod refresh_token;
pub mod reported_event;
pub mod revoked_session;
pub mod risk_event;
pub mod shop_setting;
pub mod task;
pub mod task_progress;
pub mod task_unlock;
pub mod tier;
