//! Rarely-changed rows (the tier ladder, price campaigns) kept in memory for the read paths, and
//! leaderboards when there is no Redis to keep them.
//! The process that changes them drops its copy at once and tells the others (`cache_bus`), which
//! drop theirs on the message; the TTL bounds a lost message. The listing and the charge of a
//! redemption read price campaigns from the same cache, so an instance never shows a price it
//! would not charge.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::AppResult;

/// How long another instance's change can take to show in this one.
pub const TTL: Duration = Duration::from_secs(30);

pub struct Cached<T> {
    /// The cache's name in `/metrics`.
    name: &'static str,
    entry: RwLock<Option<(Instant, Arc<T>)>>,
    /// Bumped by every invalidation, so a load that started before a change never stores the
    /// old value after it.
    generation: AtomicU64,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached::named("unnamed")
    }
}

/// Counts a lookup for `/metrics`.
fn count_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!(crate::metrics::names::CACHE_LOOKUPS, "cache" => cache, "result" => result)
        .increment(1);
}

impl<T> Cached<T> {
    pub fn named(name: &'static str) -> Self {
        Cached {
            name,
            entry: RwLock::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// The cached value, or `load`'s (then cached) when there is none or it is older than `TTL`.
    pub async fn get<F, Fut>(&self, load: F) -> AppResult<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        let cached = self.entry.read().ok().and_then(|e| e.clone());
        if let Some((at, value)) = cached
            && at.elapsed() < TTL
        {
            count_lookup(self.name, true);
            return Ok(value);
        }
        count_lookup(self.name, false);
        let generation = self.generation.load(Ordering::Acquire);
        let value = Arc::new(load().await?);
        if let Ok(mut entry) = self.entry.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            *entry = Some((Instant::now(), value.clone()));
        }
        Ok(value)
    }

    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entry) = self.entry.write() {
            *entry = None;
        }
    }
}

/// The same for values kept by key (a leaderboard per kind and period); expired entries are
/// dropped as new ones come in.
pub struct Keyed<T> {
    name: &'static str,
    ttl: Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, (Instant, Arc<T>)>>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed::named("unnamed")
    }
}

impl<T> Keyed<T> {
    pub fn named(name: &'static str) -> Self {
        Keyed::with_ttl(name, TTL)
    }

    /// Entries kept for `ttl` instead of `TTL`.
    pub fn with_ttl(name: &'static str, ttl: Duration) -> Self {
        Keyed {
            name,
            ttl,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub async fn get<F, Fut>(&self, key: &str, load: F) -> AppResult<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        let cached = self.entries.lock().ok().and_then(|e| e.get(key).cloned());
        if let Some((at, value)) = cached
            && at.elapsed() < self.ttl
        {
            count_lookup(self.name, true);
            return Ok(value);
        }
        count_lookup(self.name, false);
        let value = Arc::new(load().await?);
        if let Ok(mut entries) = self.entries.lock() {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            entries.insert(key.to_string(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_once_then_again_after_an_invalidation() {
        let cache: Cached<u32> = Cached::default();
        assert_eq!(*cache.get(|| async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(*cache.get(|| async { Ok(2) }).await.unwrap(), 1);
        cache.invalidate();
        assert_eq!(*cache.get(|| async { Ok(3) }).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache: Cached<u32> = Cached::default();
        let value = cache
            .get(|| async {
                cache.invalidate();
                Ok(1)
            })
            .await
            .unwrap();
        assert_eq!(*value, 1);
        assert_eq!(*cache.get(|| async { Ok(2) }).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn keyed_values_load_once_per_key() {
        let cache: Keyed<u32> = Keyed::default();
        assert_eq!(*cache.get("a", || async { Ok(1) }).await.unwrap(), 1);
        assert_eq!(*cache.get("b", || async { Ok(2) }).await.unwrap(), 2);
        assert_eq!(*cache.get("a", || async { Ok(3) }).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_load_is_not_kept() {
        let cache: Cached<u32> = Cached::default();
        let failed = cache
            .get(|| async { Err(crate::error::AppError::internal("down")) })
            .await;
        assert!(failed.is_err());
        assert_eq!(*cache.get(|| async { Ok(4) }).await.unwrap(), 4);
    }
}
