//! The idempotent use case, written once (zero-to-production's idempotency, inside the use
//! case's own database transaction). A member's request carries a key; `run_once`:
//!
//! 1. opens the transaction and locks the member (and anyone else the request moves points for)
//!    in id order, so the member's requests run one at a time;
//! 2. under that lock, answers a retry (same member, scope and key, same input) from the first
//!    run's record, and another request under the key with CONFLICT (looking only under the
//!    lock costs a retry the lock's wait, and saves every first run a round trip);
//! 3. otherwise runs the work and writes the record in the same transaction, so the effect and
//!    its record commit together or not at all;
//! 4. runs it again, whole, when the database broke a deadlock or a serialization conflict by
//!    failing this side (bounded, with jitter): such a failure is never answered INTERNAL.
//!
//! Every points- or stock-moving use case runs through here; none keeps its own copy. A request
//! without a key gets a generated one: it runs once and is not recorded.
//!
//! Background jobs that move many rows use `retry_transient` for their small batches: the same
//! bounded, jittered retry without a key.
//!
//! Owns: the `idempotency_record` table.
//! May call: `member` (the lock) and the infrastructure; no feature module.

pub mod rules;

use chrono::{DateTime, Utc};
use entity::idempotency_record;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};
use crate::member::{self, MemberId};

/// One request of one member, as the runner keys it.
#[derive(Debug, Clone)]
pub struct Request {
    member: MemberId,
    scope: &'static str,
    key: String,
    fingerprint: String,
    locks: Vec<MemberId>,
}

impl Request {
    /// A member's request under the client's `key` (or a generated one), with `input` the
    /// request's arguments in a fixed order.
    pub fn new(
        member: MemberId,
        scope: &'static str,
        key: Option<&str>,
        input: &[&str],
    ) -> AppResult<Self> {
        let key = match key {
            Some(key) => rules::client_key(key)?,
            None => rules::generated_key(),
        };
        Ok(Self::with_key(member, scope, key, input))
    }

    /// A request keyed by another system's identifier (the merchant's order number, named
    /// `field` in the API).
    pub fn external(
        member: MemberId,
        scope: &'static str,
        field: &str,
        key: &str,
        input: &[&str],
    ) -> AppResult<Self> {
        let key = rules::external_key(field, key)?;
        Ok(Self::with_key(member, scope, key, input))
    }

    fn with_key(member: MemberId, scope: &'static str, key: String, input: &[&str]) -> Self {
        Request {
            member,
            scope,
            key,
            fingerprint: rules::fingerprint(input),
            locks: vec![member],
        }
    }

    /// Also lock `other` (a transfer's recipient, a pool's initiator) before the work runs.
    pub fn locking(mut self, other: MemberId) -> Self {
        self.locks.push(other);
        self
    }

    pub fn member(&self) -> MemberId {
        self.member
    }

    /// `scope:key`: for rows that remember which request made them (a batch of draws).
    pub fn scoped_key(&self) -> String {
        format!("{}:{}", self.scope, self.key)
    }

    fn recorded(&self) -> bool {
        !rules::is_generated(&self.key)
    }

    /// Whether the client gave the key (so a retry may come), not the runner.
    pub fn client_keyed(&self) -> bool {
        self.recorded()
    }
}

/// What a request's earlier run stored, if it ran: CONFLICT if that run had other input.
pub async fn recorded<R: DeserializeOwned>(
    db: &impl ConnectionTrait,
    request: &Request,
) -> AppResult<Option<R>> {
    if !request.recorded() {
        return Ok(None);
    }
    let Some(record) = idempotency_record::Entity::find()
        .filter(idempotency_record::Column::MemberId.eq(request.member))
        .filter(idempotency_record::Column::Scope.eq(request.scope))
        .filter(idempotency_record::Column::Key.eq(&request.key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if !rules::replays(&record.fingerprint, &request.fingerprint) {
        return Err(AppError::Conflict(
            "this idempotencyKey was already used for another request".into(),
        ));
    }
    serde_json::from_str(&record.response)
        .map(Some)
        .map_err(|e| AppError::internal(format!("idempotency record {}: {e}", record.id)))
}

enum Attempt<T, R> {
    Ran(T),
    AlreadyRan(R),
}

/// What a use case's work hands back: its transaction (to write the record in and commit), its
/// answer, and what to store to answer retries.
pub type Done<T, R> = (DatabaseTransaction, T, R);

/// Runs `work` once for `request` (see the module's doc). `work` gets the transaction with the
/// members locked and returns it with the answer and what to store to rebuild that answer;
/// `replay` rebuilds the answer of an earlier run from what it stored. `work` may run again
/// after a transient conflict, so it must do everything through the transaction it is given.
#[tracing::instrument(
    name = "use_case",
    skip_all,
    fields(scope = request.scope, member = %request.member)
)]
pub async fn run_once<T, R, W, WorkFuture, P, ReplayFuture>(
    db: &DatabaseConnection,
    request: &Request,
    now: DateTime<Utc>,
    work: W,
    replay: P,
) -> AppResult<T>
where
    R: Serialize + DeserializeOwned,
    W: Fn(DatabaseTransaction) -> WorkFuture,
    WorkFuture: Future<Output = AppResult<Done<T, R>>>,
    P: FnOnce(R) -> ReplayFuture,
    ReplayFuture: Future<Output = AppResult<T>>,
{
    let mut attempt = 1;
    loop {
        // What a failed attempt queued for the metrics never happened.
        crate::metrics::rolled_back();
        match try_once(db, request, now, &work).await {
            Ok(Attempt::Ran(answer)) => return Ok(answer),
            Ok(Attempt::AlreadyRan(stored)) => return replay(stored).await,
            Err(e) if e.is_transient() && attempt < rules::MAX_ATTEMPTS => {
                attempt += 1;
                let wait = rules::backoff_ms(attempt, rand::rng().next_u64());
                tracing::warn!(error = %e, attempt, wait_ms = wait, "transient database conflict; running the use case again");
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs `batch` (one short transaction of a job) again when the database failed it as one side of
/// a deadlock or a serialization conflict, at most `rules::MAX_ATTEMPTS` times, with jitter.
pub async fn retry_transient<T, F, Fut>(mut batch: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let mut attempt = 1;
    loop {
        crate::metrics::rolled_back();
        match batch().await {
            Err(e) if e.is_transient() && attempt < rules::MAX_ATTEMPTS => {
                attempt += 1;
                let wait = rules::backoff_ms(attempt, rand::rng().next_u64());
                tracing::warn!(error = %e, attempt, wait_ms = wait, "transient database conflict; running the batch again");
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            outcome => return outcome,
        }
    }
}

async fn try_once<T, R, W, WorkFuture>(
    db: &DatabaseConnection,
    request: &Request,
    now: DateTime<Utc>,
    work: &W,
) -> AppResult<Attempt<T, R>>
where
    R: Serialize + DeserializeOwned,
    W: Fn(DatabaseTransaction) -> WorkFuture,
    WorkFuture: Future<Output = AppResult<Done<T, R>>>,
{
    let txn = db.begin().await?;
    member::lock(&txn, &request.locks).await?;
    // Under the member's lock: a concurrent run of this request has committed by now, or not
    // started.
    if let Some(stored) = recorded(&txn, request).await? {
        txn.rollback().await?;
        return Ok(Attempt::AlreadyRan(stored));
    }
    let (txn, answer, stored) = work(txn).await?;
    if request.recorded() {
        let response =
            serde_json::to_string(&stored).map_err(|e| AppError::internal(e.to_string()))?;
        let saved = idempotency_record::ActiveModel {
            member_id: Set(request.member.get()),
            scope: Set(request.scope.to_string()),
            key: Set(request.key.clone()),
            fingerprint: Set(request.fingerprint.clone()),
            response: Set(response),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        if let Err(e) = saved {
            if !AppError::is_unique_violation(&e) {
                return Err(e.into());
            }
            // Only a run that skipped the member's lock could get here; answer what it did.
            txn.rollback().await?;
            return match recorded(db, request).await? {
                Some(stored) => Ok(Attempt::AlreadyRan(stored)),
                None => Err(AppError::internal("idempotency record vanished")),
            };
        }
    }
    txn.commit().await?;
    crate::metrics::committed();
    Ok(Attempt::Ran(answer))
}
