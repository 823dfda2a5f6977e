//! The one writer: a task that owns the writing connection and commits the
//! writes of concurrent callers together (group commit).
//!
//! Each caller sends its write and waits for the commit that holds it. The task
//! takes everything that queued up while its previous commit ran, applies it in
//! one transaction — one multi-row statement per table — and commits once. Under
//! load a commit carries hundreds of writes, so acknowledging a webhook costs a
//! share of a commit, not a commit of its own. When a batch fails, its writes are
//! tried again one transaction each, so a bad write fails alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::Error;
use super::records::Enqueued;
use super::ticks::{TickOutcome, TickRows};
use super::writes::{self, ClaimRows, NewRun, Outcomes, RunRows};

/// Most writes in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer before callers wait to hand theirs over. The
/// webhook back-pressure limit and the worker limit keep it far below this.
const QUEUE: usize = 4096;

/// Where a write's outcome goes.
type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// One write, with where its outcome goes.
pub(super) enum Op {
    Enqueue(NewRun, Reply<Enqueued>),
    Record(RunRows, Reply<()>),
    Claim(writes::Claim, Reply<ClaimRows>),
    RequeueInterrupted(Reply<u64>),
    Tick(TickRows, Reply<TickOutcome>),
    /// Deletes up to this many finished runs that ended before this time.
    Prune(String, u32, Reply<u64>),
}

// Nearly every message is a write; boxing it to shrink the rare `Close` would
// cost an allocation per write.
#[allow(clippy::large_enum_variant)]
enum Message {
    Write(Op),
    /// Closes the connection after the writes queued before it.
    Close(oneshot::Sender<()>),
}

/// The handle callers hold; the task ends when it is closed.
#[derive(Clone)]
pub(super) struct Writer {
    sender: mpsc::Sender<Message>,
}

impl Writer {
    /// `commits` counts the transactions committed (the checkpoint task reads it).
    pub(super) fn start(connection: SqliteConnection, commits: Arc<AtomicU64>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(connection, receiver, commits));
        Self { sender }
    }

    /// Sends a write and waits until it is committed (or failed).
    pub(super) async fn write<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, Error> {
        let (reply, outcome) = oneshot::channel();
        self.sender
            .send(Message::Write(op(reply)))
            .await
            .map_err(|_| Error::Closed)?;
        outcome.await.map_err(|_| Error::Closed)?
    }

    /// Lets the writes queued so far commit, then closes the connection.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.sender.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

async fn run(mut connection: SqliteConnection, mut receiver: mpsc::Receiver<Message>, commits: Arc<AtomicU64>) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut messages, MAX_BATCH).await > 0 {
        let mut batch = Vec::with_capacity(messages.len());
        let mut close = None;
        for message in messages.drain(..) {
            match message {
                Message::Write(op) if close.is_none() => batch.push(op),
                // Writes sent after the close fail as "closed" when dropped.
                Message::Write(_) => {}
                Message::Close(done) => close = Some(done),
            }
        }
        commit_batch(&mut connection, batch).await;
        commits.fetch_add(1, Ordering::Relaxed);
        if let Some(done) = close {
            receiver.close();
            if let Err(error) = connection.close().await {
                tracing::warn!(%error, "closing the database connection");
            }
            let _ = done.send(());
            return;
        }
    }
}

async fn commit_batch(connection: &mut SqliteConnection, mut batch: Vec<Op>) {
    if batch.is_empty() {
        return;
    }
    match commit(connection, &batch).await {
        Ok(outcomes) => answer(batch, outcomes),
        Err(error) if batch.len() == 1 => {
            if let Some(op) = batch.pop() {
                fail(op, Error::Database(error));
            }
        }
        // Busy, I/O or a full disk would fail each write alone just the same (and
        // wait out the busy timeout once per write): the whole batch fails.
        Err(error) if !concerns_one_write(&error) => {
            tracing::error!(%error, writes = batch.len(), "a batch of writes failed");
            let message = error.to_string();
            for op in batch {
                fail(op, Error::Write(message.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = batch.len(), "a batch of writes failed; trying each alone");
            for op in batch {
                let mut alone = vec![op];
                match commit(connection, &alone).await {
                    Ok(outcomes) => answer(alone, outcomes),
                    Err(error) => {
                        if let Some(op) = alone.pop() {
                            fail(op, Error::Database(error));
                        }
                    }
                }
            }
        }
    }
}

async fn commit(connection: &mut SqliteConnection, ops: &[Op]) -> Result<Outcomes, sqlx::Error> {
    let mut transaction = connection.begin().await?;
    match writes::apply(&mut transaction, ops).await {
        Ok(outcomes) => {
            transaction.commit().await?;
            Ok(outcomes)
        }
        Err(error) => {
            if let Err(rollback) = transaction.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed batch");
            }
            Err(error)
        }
    }
}

/// Hands each caller its outcome, in the order `apply` produced them per kind.
fn answer(ops: Vec<Op>, outcomes: Outcomes) {
    let mut enqueued = outcomes.enqueued.into_iter();
    let mut claimed = outcomes.claimed.into_iter();
    let mut ticks = outcomes.ticks.into_iter();
    let mut pruned = outcomes.pruned.into_iter();
    let missing = || Error::Corrupt("the writer lost the outcome of a write".to_owned());
    for op in ops {
        // A caller that stopped waiting (its request was cancelled) is not an error.
        let _ = match op {
            Op::Enqueue(_, reply) => reply.send(enqueued.next().ok_or_else(missing)).is_ok(),
            Op::Record(_, reply) => reply.send(Ok(())).is_ok(),
            Op::Claim(_, reply) => reply.send(claimed.next().ok_or_else(missing)).is_ok(),
            Op::RequeueInterrupted(reply) => reply.send(Ok(outcomes.requeued)).is_ok(),
            Op::Tick(_, reply) => reply.send(ticks.next().ok_or_else(missing)).is_ok(),
            Op::Prune(_, _, reply) => reply.send(pruned.next().ok_or_else(missing)).is_ok(),
        };
    }
}

/// Whether an error comes from the content of one write (a broken constraint),
/// so that the other writes of its batch would commit without it.
fn concerns_one_write(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.kind() != sqlx::error::ErrorKind::Other)
}

fn fail(op: Op, error: Error) {
    // A caller that stopped waiting is not an error.
    let _ = match op {
        Op::Enqueue(_, reply) => reply.send(Err(error)).is_ok(),
        Op::Record(_, reply) => reply.send(Err(error)).is_ok(),
        Op::Claim(_, reply) => reply.send(Err(error)).is_ok(),
        Op::RequeueInterrupted(reply) => reply.send(Err(error)).is_ok(),
        Op::Tick(_, reply) => reply.send(Err(error)).is_ok(),
        Op::Prune(_, _, reply) => reply.send(Err(error)).is_ok(),
    };
}
