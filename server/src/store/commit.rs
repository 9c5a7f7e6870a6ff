//! Group commit of agents' alert batches.
//!
//! Every agent's batch goes through one queue per store. A committer task
//! takes what has queued while the previous transaction ran (up to
//! [`MAX_GROUP_ALERTS`] alerts) and stores it in one transaction, so a
//! fleet of agents sending at once costs a transaction per round instead
//! of one per agent, and an idle coordinator still stores a lone batch at
//! once. Each batch gets its own answer; when a grouped transaction fails,
//! its batches are stored one by one, so one batch's failure is never
//! another's.
//!
//! Agents' heartbeats go through the same queue: those that queued together
//! are written in one transaction of one statement after the round's
//! alerts (on SQLite every write waits for the one writer connection, and
//! a heartbeat written alone cost a commit of its own).

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use ward_agent::wire::{Alert, Gap, Heartbeat, IngestAck};

use super::{AgentPrincipal, Result, Store};

/// Most alerts stored in one grouped transaction.
pub(super) const MAX_GROUP_ALERTS: usize = 2_000;

/// Most heartbeats written in one transaction.
const MAX_GROUP_BEATS: usize = 1_000;

/// Batches waiting for the committer, at most.
const QUEUE_DEPTH: usize = 4_096;

/// The store's queue to its committer, started by the first ingest (so the
/// committer sees the store as configured, and runs on the caller's
/// runtime).
pub(super) type Queue = Arc<OnceLock<mpsc::Sender<Work>>>;

/// What the committer is given.
pub(super) enum Work {
    /// An agent's alert batch.
    Alerts(Job),
    /// An agent's heartbeat (boxed: a heartbeat is much larger than a
    /// batch's handles).
    Beat(Box<Beat>),
}

/// One agent's batch, and where its answer goes.
pub(super) struct Job {
    pub agent: AgentPrincipal,
    pub alerts: Vec<Alert>,
    pub gaps: Vec<Gap>,
    reply: oneshot::Sender<Result<IngestAck>>,
}

/// One agent's heartbeat, and where its answer goes.
pub(super) struct Beat {
    pub agent_id: String,
    pub heartbeat: Heartbeat,
    reply: oneshot::Sender<Result<()>>,
}

/// One agent's batch, borrowed.
pub(super) struct Batch<'a> {
    pub agent: &'a AgentPrincipal,
    pub alerts: &'a [Alert],
    pub gaps: &'a [Gap],
}

impl Store {
    /// Stores one agent's batch through the committer; directly when the
    /// committer is gone (its runtime ended).
    pub(super) async fn ingest_queued(
        &self,
        agent: &AgentPrincipal,
        alerts: &[Alert],
        gaps: &[Gap],
    ) -> Result<IngestAck> {
        let queue = self.queue.get_or_init(|| self.start_committer());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            agent: agent.clone(),
            alerts: alerts.to_vec(),
            gaps: gaps.to_vec(),
            reply,
        };
        if queue.send(Work::Alerts(job)).await.is_ok()
            && let Ok(done) = answer.await
        {
            return done;
        }
        let mut acks = self
            .ingest_batches(&[Batch {
                agent,
                alerts,
                gaps,
            }])
            .await?;
        Ok(acks.remove(0))
    }

    /// Records one agent's heartbeat through the committer; directly when
    /// the committer is gone.
    pub(super) async fn heartbeat_queued(&self, agent_id: &str, hb: &Heartbeat) -> Result<()> {
        let queue = self.queue.get_or_init(|| self.start_committer());
        let (reply, answer) = oneshot::channel();
        let beat = Beat {
            agent_id: agent_id.to_string(),
            heartbeat: hb.clone(),
            reply,
        };
        if queue.send(Work::Beat(Box::new(beat))).await.is_ok()
            && let Ok(done) = answer.await
        {
            return done;
        }
        self.record_heartbeats(&[(agent_id, hb)]).await
    }

    fn start_committer(&self) -> mpsc::Sender<Work> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        // The committer's own handle has no queue: it stores directly, and
        // holds no sender, so it ends when the last handle of the store does.
        let mut store = self.clone();
        store.queue = Queue::default();
        tokio::spawn(commit_loop(store, rx));
        tx
    }
}

async fn commit_loop(store: Store, mut rx: mpsc::Receiver<Work>) {
    while let Some(first) = rx.recv().await {
        let (mut jobs, mut beats) = (Vec::new(), Vec::new());
        let mut n = 0;
        let mut next = Some(first);
        while let Some(work) = next {
            match work {
                Work::Alerts(job) => {
                    n += job.alerts.len();
                    jobs.push(job);
                }
                Work::Beat(beat) => beats.push(*beat),
            }
            if n >= MAX_GROUP_ALERTS || beats.len() >= MAX_GROUP_BEATS {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !jobs.is_empty() {
            commit(&store, jobs).await;
        }
        if !beats.is_empty() {
            beat(&store, beats).await;
        }
    }
}

/// Writes the heartbeats `beats` in one transaction and answers each; one
/// by one when that fails.
async fn beat(store: &Store, beats: Vec<Beat>) {
    let rows: Vec<(&str, &Heartbeat)> = beats
        .iter()
        .map(|b| (b.agent_id.as_str(), &b.heartbeat))
        .collect();
    let grouped = store.record_heartbeats(&rows).await;
    drop(rows);
    match grouped {
        Ok(()) => {
            for b in beats {
                let _ = b.reply.send(Ok(()));
            }
        }
        Err(e) if beats.len() == 1 => {
            let _ = beats.into_iter().next().map(|b| b.reply.send(Err(e)));
        }
        Err(e) => {
            tracing::warn!(error = %e, heartbeats = beats.len(), "grouped heartbeats failed; writing them one by one");
            for b in beats {
                let one = store
                    .record_heartbeats(&[(b.agent_id.as_str(), &b.heartbeat)])
                    .await;
                let _ = b.reply.send(one);
            }
        }
    }
}

/// Stores `jobs` in one transaction and answers each; one by one when
/// that fails.
async fn commit(store: &Store, jobs: Vec<Job>) {
    let batches: Vec<Batch> = jobs.iter().map(Job::batch).collect();
    let grouped = store.ingest_batches(&batches).await;
    drop(batches);
    match grouped {
        Ok(acks) => {
            metrics::histogram!("ward_ingest_group_batches").record(jobs.len() as f64);
            for (job, ack) in jobs.into_iter().zip(acks) {
                let _ = job.reply.send(Ok(ack));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = jobs.into_iter().next().map(|j| j.reply.send(Err(e)));
        }
        Err(e) => {
            tracing::warn!(error = %e, batches = jobs.len(), "grouped ingest failed; storing its batches one by one");
            for job in jobs {
                let one = store
                    .ingest_batches(&[job.batch()])
                    .await
                    .map(|mut acks| acks.remove(0));
                let _ = job.reply.send(one);
            }
        }
    }
}

impl Job {
    fn batch(&self) -> Batch<'_> {
        Batch {
            agent: &self.agent,
            alerts: &self.alerts,
            gaps: &self.gaps,
        }
    }
}
