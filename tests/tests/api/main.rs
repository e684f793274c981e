//! Black-box tests of the API over HTTP. One binary, so the slow link happens once.

mod admin;
mod auth;
mod clock;
mod http_protocol;
mod limiter;
mod profile;
mod schema;
mod wechat;
