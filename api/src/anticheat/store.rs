//! Short-lived values the gate keeps: captcha challenges, captcha passes, the blacklist cache.
//! Redis when configured (shared by every instance), else this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::error::AppResult;

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn put(&self, key: &str, value: &str, ttl: Duration, now: DateTime<Utc>)
    -> AppResult<()>;
    async fn get(&self, key: &str, now: DateTime<Utc>) -> AppResult<Option<String>>;
    /// Reads and deletes in one step, so a one-use value is used once.
    async fn take(&self, key: &str, now: DateTime<Utc>) -> AppResult<Option<String>>;
    async fn delete(&self, key: &str) -> AppResult<()>;
}

/// Expiry follows the request clock, so tests can travel past a TTL.
#[derive(Default)]
pub struct MemoryStore {
    values: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, DateTime<Utc>)>) -> T) -> T {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut values)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.with(|v| {
            if v.len() > 50_000 {
                v.retain(|_, (_, until)| *until > now);
            }
            v.insert(key.to_string(), (value.to_string(), now + ttl));
        });
        Ok(())
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> AppResult<Option<String>> {
        Ok(self.with(|v| {
            v.get(key)
                .filter(|(_, until)| *until > now)
                .map(|(s, _)| s.clone())
        }))
    }

    async fn take(&self, key: &str, now: DateTime<Utc>) -> AppResult<Option<String>> {
        Ok(self.with(|v| {
            v.remove(key)
                .filter(|(_, until)| *until > now)
                .map(|(s, _)| s)
        }))
    }

    async fn delete(&self, key: &str) -> AppResult<()> {
        self.with(|v| v.remove(key));
        Ok(())
    }
}

pub struct RedisStore {
    redis: crate::redis_conn::RedisConnection,
    prefix: String,
}

impl RedisStore {
    pub fn new(redis: crate::redis_conn::RedisConnection, prefix: String) -> Self {
        RedisStore { redis, prefix }
    }

    /// The whole key is the hash tag: each key on its own slot of a Redis Cluster (no command
    /// here takes two keys).
    fn key(&self, key: &str) -> String {
        format!("{}{{{key}}}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        _now: DateTime<Utc>,
    ) -> AppResult<()> {
        let mut con = self.redis.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.num_milliseconds().max(1))
            .query_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str, _now: DateTime<Utc>) -> AppResult<Option<String>> {
        let mut con = self.redis.clone();
        Ok(redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut con)
            .await?)
    }

    async fn take(&self, key: &str, _now: DateTime<Utc>) -> AppResult<Option<String>> {
        let mut con = self.redis.clone();
        Ok(redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut con)
            .await?)
    }

    async fn delete(&self, key: &str) -> AppResult<()> {
        let mut con = self.redis.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut con)
            .await?;
        Ok(())
    }
}
