//! Cache invalidation across instances. An instance that changes a cached table (tiers, price
//! campaigns) drops its own copy and publishes the cache's name on one Redis channel; every
//! instance listens and drops its copy on the message, so a change shows everywhere at once.
//! The caches' TTL (`cache::TTL`) stays as the bound when a message is lost, and a listener that
//! reconnects drops every cache, since it may have missed some. Without Redis there is one
//! instance and nothing to tell.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub const TIERS: &str = "tiers";
pub const PRICE_CAMPAIGNS: &str = "price_campaigns";
const ALL: &[&str] = &[TIERS, PRICE_CAMPAIGNS];

fn channel(app: &AppState) -> String {
    format!("{}cache-invalidated", app.settings.redis_key_prefix)
}

/// Drops this instance's copy. `/metrics` counts it by `origin`: `local`, `remote` (another
/// instance's message) or `reconnect` (messages may have been missed).
fn drop_local(app: &AppState, name: &str, origin: &'static str) {
    let cache = match name {
        TIERS => {
            app.tiers.invalidate();
            TIERS
        }
        PRICE_CAMPAIGNS => {
            app.price_campaigns.invalidate();
            PRICE_CAMPAIGNS
        }
        other => {
            tracing::warn!(cache = other, "invalidation of an unknown cache ignored");
            return;
        }
    };
    metrics::counter!(crate::metrics::names::CACHE_INVALIDATIONS, "cache" => cache, "origin" => origin)
        .increment(1);
}

/// Drops the cache here and tells the other instances to drop theirs.
pub async fn invalidate(app: &AppState, name: &'static str) {
    drop_local(app, name, "local");
    let Some(redis) = &app.redis else { return };
    let mut con = redis.clone();
    let published = redis::cmd("PUBLISH")
        .arg(channel(app))
        .arg(name)
        .query_async::<i64>(&mut con)
        .await;
    if let Err(e) = published {
        tracing::warn!(error = %e, cache = name, "publishing a cache invalidation failed; other instances catch up within the cache TTL");
    }
}

/// Listens for other instances' invalidations until the process stops.
pub fn spawn_listener(app: AppState) -> Option<JoinHandle<()>> {
    let url = app.settings.redis_url.clone()?;
    // Any node of a cluster hears every PUBLISH; the first seed node will do.
    let url = crate::redis_conn::cluster_nodes(&url, app.settings.redis_cluster)
        .and_then(|nodes| nodes.into_iter().next())
        .unwrap_or(url);
    Some(tokio::spawn(async move {
        let mut first = true;
        let mut reconnecting = false;
        loop {
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = app.shutdown.cancelled() => return,
                }
            }
            first = false;
            let pubsub = async {
                let mut pubsub = redis::Client::open(url.as_str())?
                    .get_async_pubsub()
                    .await?;
                pubsub.subscribe(channel(&app)).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let mut pubsub = match pubsub.await {
                Ok(pubsub) => pubsub,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for cache invalidations; retrying");
                    continue;
                }
            };
            // Whatever was published while the connection was down is lost: start afresh. (At
            // start-up there was nothing to miss but the moment before subscribing, which the
            // caches' TTL bounds.)
            if reconnecting {
                for name in ALL {
                    drop_local(&app, name, "reconnect");
                }
            }
            reconnecting = true;
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => {
                            if let Ok(name) = message.get_payload::<String>() {
                                drop_local(&app, &name, "remote");
                            }
                        }
                        None => {
                            tracing::warn!("cache invalidation channel closed; reconnecting");
                            break;
                        }
                    },
                    _ = app.shutdown.cancelled() => return,
                }
            }
        }
    }))
}
