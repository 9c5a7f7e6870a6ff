//! WAL checkpoints of the SQLite store, off the writer's path.
//!
//! In WAL mode every commit appends the pages it changed to the log, and a
//! checkpoint copies them back into the database file. SQLite's own
//! automatic checkpoint runs on the connection that committed, inside its
//! COMMIT: under fleet load a round of alerts changes some thousands of
//! pages, so every round's commit also copied them, and the one writer
//! (the path every alert waits on) spent an eighth of its time there.
//!
//! Here a connection of its own runs passive checkpoints whenever the
//! writer has committed (and every [`IDLE_CHECK`] regardless). A passive
//! checkpoint never takes the write lock, so the writer goes on with the
//! next round meanwhile, and SQLite starts the log over at the writer's
//! next transaction once everything in it is copied. The writer keeps an
//! automatic checkpoint at [`BACKSTOP_PAGES`], far above a round, for when
//! this task is not running (its runtime ended): the log never grows
//! without bound.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

/// A checkpoint runs at least this often while the store is open.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The writer's own automatic checkpoint: log pages (4 KiB each) before
/// the committing connection copies them itself. SQLite's default is 1,000.
pub(super) const BACKSTOP_PAGES: u32 = 20_000;

/// Wakes the checkpointer; it ends once the store's last handle is gone.
#[derive(Clone)]
pub(super) struct Checkpointer {
    wake: Arc<Notify>,
}

impl Checkpointer {
    /// Starts checkpointing through `pool` (one connection that may write
    /// the database file) on the current runtime.
    pub(super) fn start(pool: AnyPool) -> Self {
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(pool, Arc::downgrade(&wake)));
        Checkpointer { wake }
    }

    /// The writer committed: the log has pages to copy.
    pub(super) fn committed(&self) {
        self.wake.notify_one();
    }
}

async fn run(pool: AnyPool, wake: std::sync::Weak<Notify>) {
    let mut failing = false;
    while let Some(notify) = wake.upgrade() {
        // A wake-up while a checkpoint runs is kept: the next one starts at once.
        let _ = tokio::time::timeout(IDLE_CHECK, notify.notified()).await;
        drop(notify);
        if wake.strong_count() == 0 {
            break;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok(row) => {
                if failing {
                    tracing::info!("WAL checkpoints work again");
                    failing = false;
                }
                let (log, copied): (i64, i64) = (row.get(1), row.get(2));
                tracing::trace!(log, copied, "WAL checkpoint");
            }
            Err(e) => {
                // Said once per spell of failures (every second otherwise);
                // the writer's own checkpoint still bounds the log.
                if !failing {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoint bounds the log meanwhile");
                    failing = true;
                }
            }
        }
    }
    pool.close().await;
}
