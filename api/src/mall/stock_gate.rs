//! The flash-sale gate in front of the stock's conditional update: once an item is sold out,
//! a redemption is refused before the anti-cheat gate and without touching the stock, and while
//! it is not, at most as many redemptions as units left go on to the database. The conditional
//! update in `redeem` still decides every sale; the gate only turns away those that could not win.
//!
//! With Redis, every instance shares a count per item (`{prefix}{stock:<item>}`). `look` refuses
//! when the count is below the quantity (before the anti-cheat gate); `admit`, after it, reserves
//! the units with a Lua script; a redemption that does not go through gives them back (`settle`).
//! A unit held by a request that then fails is thus "sold out" for others only while that request
//! runs. The count is primed from the database when missing, lives `COUNT_TTL`, and is dropped
//! at once by any write that puts stock back (an operator's edit, a cancellation). A request
//! with the client's idempotency key marks itself in flight beside the count, so its retry is let
//! through to wait for it and replay, never told OUT_OF_STOCK while the first attempt sells.
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

/// Reserves ARGV[1] units of the count KEYS[1]: 1 when reserved, 0 when fewer are left, -1 when
/// there is no count, 2 when the same keyed request (marker KEYS[2], if given) is in flight.
/// A reservation marks its request in flight for ARGV[2] ms.
const RESERVE_SCRIPT: &str = r"
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
if tonumber(left) < tonumber(ARGV[1]) then return 0 end
redis.call('DECRBY', KEYS[1], ARGV[1])
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return 1
";

/// Refuses without reserving: 0 when fewer than ARGV[1] units are left and the keyed request
/// (marker KEYS[2], if given) is not in flight, 1 otherwise (or when there is no count).
const LOOK_SCRIPT: &str = r"
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local left = redis.call('GET', KEYS[1])
if left and tonumber(left) < tonumber(ARGV[1]) then return 0 end
return 1
";

/// Gives ARGV[1] units back to a count that still exists (a new count is primed from the
/// database, which never saw the reservation), and clears the request's marker KEYS[2].
const RELEASE_SCRIPT: &str = r"
if KEYS[2] then redis.call('DEL', KEYS[2]) end
if tonumber(ARGV[1]) > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Units reserved in Redis: given back unless the redemption sells them; `marker` is the
    /// keyed request's in-flight marker, cleared when it ends.
    Reserved {
        item_id: i64,
        quantity: i64,
        marker: Option<String>,
    },
    /// Not gated (no count, Redis unavailable, no Redis, or a retry of a sale that went through).
    Open { item_id: i64, quantity: i64 },
}

/// The count, and beside it (same hash slot) the markers of keyed requests in flight.
fn count_key(app: &AppState, item_id: i64) -> String {
    format!("{}{{stock:{item_id}}}", app.settings.redis_key_prefix)
}

fn marker_key(app: &AppState, item_id: i64, request: &Request) -> Option<String> {
    request.client_keyed().then(|| {
        format!(
            "{}{{stock:{item_id}}}:inflight:{}:{}",
            app.settings.redis_key_prefix,
            request.member(),
            request.scoped_key()
        )
    })
}

/// How long a marker outlives a request that never cleared it (a crashed instance).
const MARKER_TTL: Duration = Duration::from_secs(60);

fn flags(app: &AppState) -> AppResult<&StockGate> {
    app.extensions.get::<StockGate>()
}

enum Reserve {
    Reserved,
    Short,
    NoCount,
    InFlight,
}

/// Runs `script` on the count key and, when given, the request's marker key.
async fn run_script(
    app: &AppState,
    script: &str,
    count: String,
    marker: Option<&String>,
    args: &[u64],
) -> redis::RedisResult<i64> {
    let Some(redis) = &app.redis else {
        return Ok(-1);
    };
    let mut con = redis.clone();
    let script = redis::Script::new(script);
    let mut invocation = script.prepare_invoke();
    invocation.key(count);
    if let Some(marker) = marker {
        invocation.key(marker.clone());
    }
    for arg in args {
        invocation.arg(*arg);
    }
    invocation.invoke_async(&mut con).await
}

async fn reserve(
    app: &AppState,
    item_id: i64,
    quantity: i64,
    marker: Option<&String>,
) -> redis::RedisResult<Reserve> {
    let args = [quantity.max(0) as u64, MARKER_TTL.as_millis() as u64];
    let outcome = run_script(app, RESERVE_SCRIPT, count_key(app, item_id), marker, &args).await?;
    Ok(match outcome {
        1 => Reserve::Reserved,
        0 => Reserve::Short,
        2 => Reserve::InFlight,
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

/// Before the anti-cheat gate: OUT_OF_STOCK when the item is sold out (a retry of a sale that
/// went through, or of one still running, is let through to replay), without reserving.
pub async fn look(app: &AppState, request: &Request, r: &RedeemRequest) -> AppResult<()> {
    let (item_id, quantity) = (r.item_id, r.quantity);
    if app.redis.is_none() {
        let flags = flags(app)?;
        if flags.is_sold_out(item_id) {
            return refuse(app, request).await;
        }
        // One read of the item, no lock: stock only grows back by a write that clears the flag.
        return match catalog::find(&app.db, item_id).await? {
            Some(item) if item.active && item.stock < quantity => {
                if item.stock <= 0 {
                    flags.mark(item_id);
                }
                refuse(app, request).await
            }
            _ => Ok(()),
        };
    }
    let marker = marker_key(app, item_id, request);
    let args = [quantity.max(0) as u64];
    match run_script(
        app,
        LOOK_SCRIPT,
        count_key(app, item_id),
        marker.as_ref(),
        &args,
    )
    .await
    {
        Ok(0) => refuse(app, request).await,
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, item_id, "the stock gate is unavailable; the database decides alone");
            Ok(())
        }
    }
}

/// After the anti-cheat gate: reserves the units (OUT_OF_STOCK when fewer are left), so that at
/// most as many redemptions as units go on to the database.
pub async fn admit(app: &AppState, request: &Request, r: &RedeemRequest) -> AppResult<Admission> {
    let (item_id, quantity) = (r.item_id, r.quantity);
    let open = Admission::Open { item_id, quantity };
    if app.redis.is_none() {
        return Ok(open);
    }
    let marker = marker_key(app, item_id, request);
    let mut outcome = reserve(app, item_id, quantity, marker.as_ref()).await;
    if let Ok(Reserve::NoCount) = outcome {
        // One request of this instance primes; the others find the count when they get the lock.
        let lock = flags(app)?.priming_lock(item_id);
        let _priming = lock.lock().await;
        outcome = reserve(app, item_id, quantity, marker.as_ref()).await;
        if let Ok(Reserve::NoCount) = outcome {
            match prime(app, item_id).await {
                Ok(true) => outcome = reserve(app, item_id, quantity, marker.as_ref()).await,
                Ok(false) => return Ok(open),
                Err(e) => {
                    tracing::warn!(error = %e, item_id, "priming the stock gate failed; the database decides alone");
                    return Ok(open);
                }
            }
        }
    }
    match outcome {
        Ok(Reserve::Reserved) => Ok(Admission::Reserved {
            item_id,
            quantity,
            marker,
        }),
        Ok(Reserve::Short) => refuse(app, request).await.map(|()| open),
        // The same request is running: this retry waits for it under the member's lock.
        Ok(Reserve::InFlight | Reserve::NoCount) => Ok(open),
        Err(e) => {
            tracing::warn!(error = %e, item_id, "the stock gate is unavailable; the database decides alone");
            Ok(open)
        }
    }
}

/// OUT_OF_STOCK, unless the request is a retry of a redemption that went through.
async fn refuse(app: &AppState, request: &Request) -> AppResult<()> {
    if idempotency::recorded::<OrderRow>(&app.db, request)
        .await?
        .is_some()
    {
        return Ok(());
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
        Admission::Reserved {
            item_id,
            quantity,
            marker,
        } => {
            let give_back = if sold && outcome.is_ok() { 0 } else { quantity };
            let released = run_script(
                app,
                RELEASE_SCRIPT,
                count_key(app, item_id),
                marker.as_ref(),
                &[give_back.max(0) as u64],
            )
            .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, item_id, "giving back a stock reservation failed; the count is primed again within its TTL");
            }
            if out_of_stock {
                // The database had less than the count said: read it again.
                forget(app, item_id).await;
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
