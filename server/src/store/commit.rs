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

use super::{AgentPrincipal, Backend, Result, Store};

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
        // The committer's own handle has no queue: it stores directly, and
        // holds no sender, so it ends when the last handle of the store does.
        let mut store = self.clone();
        store.queue = Queue::default();
        if self.backend == Backend::Sqlite {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            match spawn_commit_thread(store.clone(), rx) {
                Ok(()) => return tx,
                Err(e) => {
                    tracing::warn!(error = %e, "no thread for the committer; it shares the runtime");
                }
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(commit_loop(store, rx));
        tx
    }
}

/// Runs the SQLite committer on a thread of its own.
///
/// A round is a chain of statements, each a hop to the writer connection's
/// thread and back, and nothing else is written while it is in flight (one
/// writer). On the server's runtime every hop back waited for a worker,
/// often one busy decoding a request: under fleet load the writer sat idle
/// a third of the time. A thread of its own is woken at once. PostgreSQL
/// rounds wait on the network instead, and their connections belong to the
/// server's runtime: they stay there.
fn spawn_commit_thread(store: Store, rx: mpsc::Receiver<Work>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ward-committer".into())
        .spawn(move || runtime.block_on(commit_loop(store, rx)))?;
    Ok(())
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
    let grouped = store
        .record_heartbeats(&rows)
        .await
        .map(|()| vec![(); rows.len()]);
    drop(rows);
    let reply = |b: Beat, done| {
        let _ = b.reply.send(done);
    };
    for b in answer_grouped(beats, grouped, "heartbeats", reply) {
        let one = store
            .record_heartbeats(&[(b.agent_id.as_str(), &b.heartbeat)])
            .await;
        reply(b, one);
    }
}

/// Stores `jobs` in one transaction and answers each; one by one when
/// that fails.
async fn commit(store: &Store, jobs: Vec<Job>) {
    let batches: Vec<Batch> = jobs.iter().map(Job::batch).collect();
    let grouped = store.ingest_batches(&batches).await;
    drop(batches);
    if grouped.is_ok() {
        metrics::histogram!("ward_ingest_group_batches").record(jobs.len() as f64);
    }
    let reply = |job: Job, done| {
        let _ = job.reply.send(done);
    };
    for job in answer_grouped(jobs, grouped, "batches", reply) {
        let one = store
            .ingest_batches(&[job.batch()])
            .await
            .map(|mut acks| acks.remove(0));
        reply(job, one);
    }
}

/// Answers each of `works` with its part of the `grouped` result, or a
/// lone one with the group's error; returns the ones to store alone (the
/// group of several failed: one item's failure is never another's).
fn answer_grouped<W, A>(
    works: Vec<W>,
    grouped: Result<Vec<A>>,
    what: &str,
    reply: impl Fn(W, Result<A>),
) -> Vec<W> {
    match grouped {
        Ok(answers) => {
            for (w, a) in works.into_iter().zip(answers) {
                reply(w, Ok(a));
            }
            Vec::new()
        }
        Err(e) if works.len() == 1 => {
            if let Some(w) = works.into_iter().next() {
                reply(w, Err(e));
            }
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, count = works.len(), "grouped {what} failed; storing them one by one");
            works
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
