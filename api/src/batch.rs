//! What a job that changes many rows needs besides the database: how many rows one short
//! transaction takes, and when to stop. Such a job works in id order, a batch per transaction,
//! retrying a batch the database failed as a deadlock victim (`idempotency::retry_transient`);
//! it checks `stopping` between batches, so on shutdown the batch in hand finishes and the next
//! run carries on where this one stopped.

use tokio_util::sync::CancellationToken;

/// Rows per transaction: small enough that a batch holds its row locks for milliseconds.
pub const DEFAULT_BATCH_SIZE: usize = 200;

#[derive(Clone)]
pub struct Batches {
    size: usize,
    stop: CancellationToken,
}

impl Default for Batches {
    fn default() -> Self {
        Batches::new(DEFAULT_BATCH_SIZE, CancellationToken::new())
    }
}

impl Batches {
    pub fn new(size: usize, stop: CancellationToken) -> Self {
        Batches {
            size: size.max(1),
            stop,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The process is stopping: finish the batch in hand and start no other.
    pub fn stopping(&self) -> bool {
        let stopping = self.stop.is_cancelled();
        if stopping {
            tracing::info!("stopping between batches; the next run carries on");
        }
        stopping
    }
}
