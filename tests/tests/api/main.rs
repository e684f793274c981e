//! Black-box tests of the API over HTTP. One binary, so the slow link happens once.

mod achievements;
mod admin;
mod anticheat;
mod auth;
mod auth_hardening;
mod blindbox;
mod checkin_tasks;
mod clock;
mod hardening;
mod http_protocol;
mod idempotency;
mod limiter;
mod mall;
mod member_center;
mod module_graph;
mod playground;
mod points;
mod profile;
mod progress;
mod scale_out;
mod schema;
mod soak_findings;
mod teardown;
mod wechat;
