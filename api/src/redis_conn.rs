//! One Redis connection type for a single Redis and a Redis Cluster alike, so nothing else
//! in the server knows which it talks to.
//!
//! `REDIS_URL=redis://host:6379/` is one Redis (a connection manager that reconnects);
//! `REDIS_URL=redis+cluster://host1:7000,host2:7001/` (or `rediss+cluster://` for TLS), or any
//! `redis://` URL with `REDIS_CLUSTER=true`, is a Redis Cluster reached through those seed nodes.
//! Every key the server writes carries a hash tag (`{…}`), and every script or pipeline keeps its
//! keys under one tag, so each runs on one slot.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Times a command (or pipeline) for `/metrics`. A script's first run answers NOSCRIPT before
/// the client loads it; that is not counted as an error.
fn timed<'a, T: Send + 'a>(command: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        let outcome = command.await;
        metrics::histogram!(crate::metrics::names::REDIS_SECONDS)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome
            && e.code() != Some("NOSCRIPT")
        {
            metrics::counter!(crate::metrics::names::REDIS_ERRORS).increment(1);
        }
        outcome
    })
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        timed(match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        timed(match self {
            RedisConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        })
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisConnection {
    pub fn kind(&self) -> &'static str {
        match self {
            RedisConnection::Single(_) => "redis",
            RedisConnection::Cluster(_) => "redis-cluster",
        }
    }
}

/// The seed nodes of a cluster URL (`redis+cluster://a:7000,b:7001/` -> `redis://a:7000/`,
/// `redis://b:7001/`), or `None` for a single-Redis URL.
pub fn cluster_nodes(url: &str, cluster_flag: bool) -> Option<Vec<String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
        ("rediss", rest)
    } else if cluster_flag {
        return Some(vec![url.to_string()]);
    } else {
        return None;
    };
    let (userinfo, hosts) = match rest.split_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    let hosts = hosts.split('/').next().unwrap_or(hosts);
    Some(
        hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}://{userinfo}{h}/"))
            .collect(),
    )
}

/// Connects once; the caller retries.
pub async fn connect(url: &str, cluster_flag: bool) -> redis::RedisResult<RedisConnection> {
    let connect_timeout = Duration::from_secs(2);
    let response_timeout = Duration::from_secs(2);
    match cluster_nodes(url, cluster_flag) {
        Some(nodes) => {
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                .retries(2)
                .build()?;
            Ok(RedisConnection::Cluster(
                client.get_async_connection().await?,
            ))
        }
        None => {
            let client = redis::Client::open(url)?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1);
            Ok(RedisConnection::Single(
                client.get_connection_manager_with_config(config).await?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/", false), None);
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/", false),
            Some(vec![
                "redis://127.0.0.1:7000/".to_string(),
                "redis://127.0.0.1:7001/".to_string()
            ])
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://user:pw@a:7000", false),
            Some(vec!["rediss://user:pw@a:7000/".to_string()])
        );
        assert_eq!(
            cluster_nodes("redis://a:7000/", true),
            Some(vec!["redis://a:7000/".to_string()])
        );
    }
}
