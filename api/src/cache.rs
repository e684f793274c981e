//! Rarely-changed rows (the tier ladder, price campaigns) kept in memory for the read paths.
//! The process that changes them drops its copy at once; other instances see the change within
//! the TTL. Use cases that charge or decide (redeem, tier upgrades) read the tables themselves.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::AppResult;

/// How long another instance's change can take to show in this one.
pub const TTL: Duration = Duration::from_secs(30);

pub struct Cached<T> {
    entry: RwLock<Option<(Instant, Arc<T>)>>,
    /// Bumped by every invalidation, so a load that started before a change never stores the
    /// old value after it.
    generation: AtomicU64,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            entry: RwLock::new(None),
            generation: AtomicU64::new(0),
        }
    }
}

impl<T> Cached<T> {
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
            return Ok(value);
        }
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
    async fn a_failed_load_is_not_kept() {
        let cache: Cached<u32> = Cached::default();
        let failed = cache
            .get(|| async { Err(crate::error::AppError::internal("down")) })
            .await;
        assert!(failed.is_err());
        assert_eq!(*cache.get(|| async { Ok(4) }).await.unwrap(), 4);
    }
}
