//! SeaORM entities, one file per table. These are storage shapes, not API types:
//! each module maps them to its own GraphQL types.

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
pub mod risk_event;
pub mod shop_setting;
pub mod task;
pub mod task_progress;
pub mod task_unlock;
pub mod tier;
