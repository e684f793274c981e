//! The flash-sale gate in front of the stock's conditional update: once an item is sold out,
//! a redemption is refused without a database round trip, and while it is not, at most as many
//! redemptions reach the database as there are units left. The conditional update in `redeem`
//! still decides every sale; the gate only turns away those that could not win.
//!
//! With Redis, every instance shares a count per item (`{prefix}stock:{item}`): a Lua script
//! reserves units (refusing below the quantity), a redemption that does not go through gives
//! its reservation back, and the count is primed from the database when missing. It can only
//! be too high (more requests reach the database, which refuses them) except for a reservation
//! whose instance died before giving it back: the count lives `COUNT_TTL`, then is primed again,
//! and any write that puts stock back (an operator's edit, a cancellation) drops it at once.
//! Without Redis, a redemption reads the item (one read, no lock) and one instance remembers the
//! items found sold out, for as long, so the next refusals cost no round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::catalog;
use super::redeem::{OrderRow, RedeemRequest};
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::state::AppState;

/// How long a count (or a sold-out flag) is trusted before it is read from the database again.
const COUNT_TTL: Duration = Duration::from_secs(10);

/// Reserves ARGV[1] units: 1 when reserved, 0 when fewer are left, -1 when there is no count.
const RESERVE_SCRIPT: &str = r"
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
if tonumber(left) < tonumber(ARGV[1]) then return 0 end
redis.call('DECRBY', KEYS[1], ARGV[1])
return 1
";

/// Gives ARGV[1] units back to a count that still exists (a new count is primed from the
/// database, which never saw the reservation).
const RELEASE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return 0
";

/// What one instance keeps for the gate: the items found sold out (used when there is no
/// Redis), and a lock per item being primed, so that a burst on an item with no count primes it
/// once, not once per request.
#[derive(Default)]
pub struct StockGate {
    sold_out: Mutex<HashMap<i64, Instant>>,
    priming: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

/// Idle priming locks are dropped once there are more than this many.
const MAX_IDLE_PRIMING_LOCKS: usize = 256;

impl StockGate {
    fn priming_lock(&self, item_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.priming.lock() else {
            return Arc::default();
        };
        if locks.len() > MAX_IDLE_PRIMING_LOCKS {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(item_id).or_default().clone()
    }

    fn is_sold_out(&self, item_id: i64) -> bool {
        self.sold_out
            .lock()
            .ok()
            .and_then(|flags| flags.get(&item_id).copied())
            .is_some_and(|at| at.elapsed() < COUNT_TTL)
    }

    fn mark(&self, item_id: i64) {
        if let Ok(mut flags) = self.sold_out.lock() {
            flags.retain(|_, at| at.elapsed() < COUNT_TTL);
            flags.insert(item_id, Instant::now());
        }
    }

    fn clear(&self, item_id: i64) {
        if let Ok(mut flags) = self.sold_out.lock() {
            flags.remove(&item_id);
        }
    }
}

/// What the gate let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Units reserved in Redis: given back unless the redemption sells them.
    Reserved { item_id: i64, quantity: i64 },
    /// Not gated (no count, Redis unavailable, no Redis, or a retry of a sale that went through).
    Open { item_id: i64, quantity: i64 },
}

fn count_key(app: &AppState, item_id: i64) -> String {
    format!("{}stock:{item_id}", app.settings.redis_key_prefix)
}

fn flags(app: &AppState) -> AppResult<&StockGate> {
    app.extensions.get::<StockGate>()
}

enum Reserve {
    Reserved,
    Short,
    NoCount,
}

async fn reserve(app: &AppState, item_id: i64, quantity: i64) -> redis::RedisResult<Reserve> {
    let Some(redis) = &app.redis else {
        return Ok(Reserve::NoCount);
    };
    let mut con = redis.clone();
    let outcome: i64 = redis::Script::new(RESERVE_SCRIPT)
        .key(count_key(app, item_id))
        .arg(quantity)
        .invoke_async(&mut con)
        .await?;
    Ok(match outcome {
        1 => Reserve::Reserved,
        0 => Reserve::Short,
        _ => Reserve::NoCount,
    })
}

/// Sets the count from the database's stock unless another request just did.
async fn prime(app: &AppState, item_id: i64) -> AppResult<bool> {
    let Some(redis) = &app.redis else {
        return Ok(false);
    };
    let Some(item) = catalog::find(&app.db, item_id).await? else {
        return Ok(false);
    };
    if !item.active {
        return Ok(false);
    }
    let mut con = redis.clone();
    let _: Option<String> = redis::cmd("SET")
        .arg(count_key(app, item_id))
        .arg(item.stock)
        .arg("NX")
        .arg("PX")
        .arg(COUNT_TTL.as_millis() as u64)
        .query_async(&mut con)
        .await?;
    Ok(true)
}

/// Asks the gate for a redemption: OUT_OF_STOCK when the item is sold out (a retry of a sale that
/// went through is let through, to replay), otherwise what it reserved.
pub async fn admit(app: &AppState, request: &Request, r: &RedeemRequest) -> AppResult<Admission> {
    let (item_id, quantity) = (r.item_id, r.quantity);
    let open = Admission::Open { item_id, quantity };
    if app.redis.is_none() {
        let flags = flags(app)?;
        if flags.is_sold_out(item_id) {
            return refuse(app, request, open).await;
        }
        // One read of the item, no lock: stock only grows back by a write that clears the flag.
        return match catalog::find(&app.db, item_id).await? {
            Some(item) if item.active && item.stock < quantity => {
                if item.stock <= 0 {
                    flags.mark(item_id);
                }
                refuse(app, request, open).await
            }
            _ => Ok(open),
        };
    }
    let mut outcome = reserve(app, item_id, quantity).await;
    if let Ok(Reserve::NoCount) = outcome {
        // One request of this instance primes; the others find the count when they get the lock.
        let lock = flags(app)?.priming_lock(item_id);
        let _priming = lock.lock().await;
        outcome = reserve(app, item_id, quantity).await;
        if let Ok(Reserve::NoCount) = outcome {
            match prime(app, item_id).await {
                Ok(true) => outcome = reserve(app, item_id, quantity).await,
                Ok(false) => return Ok(open),
                Err(e) => {
                    tracing::warn!(error = %e, item_id, "priming the stock gate failed; the database decides alone");
                    return Ok(open);
                }
            }
        }
    }
    match outcome {
        Ok(Reserve::Reserved) => Ok(Admission::Reserved { item_id, quantity }),
        Ok(Reserve::Short) => refuse(app, request, open).await,
        Ok(Reserve::NoCount) => Ok(open),
        Err(e) => {
            tracing::warn!(error = %e, item_id, "the stock gate is unavailable; the database decides alone");
            Ok(open)
        }
    }
}

/// OUT_OF_STOCK, unless the request is a retry of a redemption that went through.
async fn refuse(app: &AppState, request: &Request, open: Admission) -> AppResult<Admission> {
    if idempotency::recorded::<OrderRow>(&app.db, request)
        .await?
        .is_some()
    {
        return Ok(open);
    }
    metrics::counter!(crate::metrics::names::SOLD_OUT).increment(1);
    Err(AppError::OutOfStock)
}

/// After the redemption: a reservation it did not sell goes back (or the count is dropped when
/// the database found less stock than the count said); without Redis, the database's sold-out
/// answer is remembered.
pub async fn settle<T>(app: &AppState, admission: Admission, outcome: &AppResult<T>, sold: bool) {
    let out_of_stock = matches!(outcome, Err(AppError::OutOfStock));
    match admission {
        Admission::Reserved { .. } if sold && outcome.is_ok() => {}
        Admission::Reserved { item_id, .. } if out_of_stock => forget(app, item_id).await,
        Admission::Reserved { item_id, quantity } => {
            let Some(redis) = &app.redis else { return };
            let mut con = redis.clone();
            let released: redis::RedisResult<i64> = redis::Script::new(RELEASE_SCRIPT)
                .key(count_key(app, item_id))
                .arg(quantity)
                .invoke_async(&mut con)
                .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, item_id, "giving back a stock reservation failed; the count is primed again within its TTL");
            }
        }
        // A single unit refused means none is left.
        Admission::Open { item_id, quantity } => {
            if out_of_stock
                && quantity == 1
                && app.redis.is_none()
                && let Ok(flags) = flags(app)
            {
                flags.mark(item_id);
            }
        }
    }
}

/// Drops what the gate knows of an item (after a write that may have put stock back), on every
/// instance: the next redemption primes it from the database.
pub async fn forget(app: &AppState, item_id: i64) {
    if let Ok(flags) = flags(app) {
        flags.clear(item_id);
    }
    let Some(redis) = &app.redis else { return };
    let mut con = redis.clone();
    let dropped: redis::RedisResult<i64> = redis::cmd("DEL")
        .arg(count_key(app, item_id))
        .query_async(&mut con)
        .await;
    if let Err(e) = dropped {
        tracing::warn!(error = %e, item_id, "dropping a stock count failed; it expires within its TTL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sold_out_flag_holds_until_a_write_clears_it() {
        let gate = StockGate::default();
        assert!(!gate.is_sold_out(7));
        gate.mark(7);
        assert!(gate.is_sold_out(7));
        assert!(!gate.is_sold_out(8));
        gate.clear(7);
        assert!(!gate.is_sold_out(7));
    }

    #[test]
    fn requests_for_one_item_share_its_priming_lock_and_idle_locks_are_dropped() {
        let gate = StockGate::default();
        let held = gate.priming_lock(1);
        assert!(Arc::ptr_eq(&held, &gate.priming_lock(1)));
        assert!(!Arc::ptr_eq(&held, &gate.priming_lock(2)));
        for item in 3..(MAX_IDLE_PRIMING_LOCKS as i64 + 10) {
            gate.priming_lock(item);
        }
        let locks = gate.priming.lock().unwrap();
        assert!(locks.len() <= MAX_IDLE_PRIMING_LOCKS + 2, "{}", locks.len());
        // The lock still held is kept, so its waiters and newcomers stay on one lock.
        assert!(Arc::ptr_eq(&held, &locks[&1]));
    }
}
