//! The one writer: a thread that owns the writing connection and commits the
//! writes of concurrent callers together (group commit).
//!
//! Each caller sends its write and waits for the commit that holds it. The
//! thread takes everything that queued up while its previous commit ran, applies
//! it in one transaction and commits once. Under load a commit carries dozens of
//! writes, so acknowledging a webhook costs a share of a commit, not a commit of
//! its own. When a batch fails, its writes are tried again one transaction each,
//! so a bad write fails alone.
//!
//! The connection is rusqlite's on a thread of its own, not an async driver's:
//! a whole batch runs in one hand-off, where an async driver hands every
//! statement to its connection thread and back (see docs/decisions.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::Error;
use super::statements::Statements;

/// Most writes in one transaction.
const MAX_BATCH: usize = 512;
/// How long a WAL restart waits for readers (their reads take milliseconds),
/// holding the writes back meanwhile.
const READER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// A batch smaller than this, of writes from several callers, lets the
/// callers' threads run once before it commits (see `run`).
const GATHER_BELOW: usize = 32;
/// Writes waiting for the writer before callers wait to hand theirs over. The
/// webhook back-pressure limit and the worker limit keep it far below this.
const QUEUE: usize = 4096;

/// Where a write's outcome goes.
type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// Whether the storage refuses writes: `GET /api/v1/health` answers `503` for
/// [`REFUSAL_HOLDS`] after a refused commit, though reads still work. Not
/// cleared by the next commit that passes: on a full disk a small write may pass
/// (a WAL that started over has room) while webhooks still fail; the health
/// check's probe write, a webhook's size, says when writes work again.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    last_refusal: std::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// Commits the storage refused, since the start.
    refusals: AtomicU64,
}

/// How long a refused commit keeps health failing before a probe may clear it.
pub(crate) const REFUSAL_HOLDS: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the writes stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteState {
    Working,
    /// A commit was refused within [`REFUSAL_HOLDS`]: why.
    Refusing(String),
    /// Refused before that: a probe says whether they work again.
    Unsure,
}

impl WriteHealth {
    pub(crate) fn state(&self) -> WriteState {
        let Ok(last) = self.last_refusal.lock() else {
            return WriteState::Unsure;
        };
        match last.as_ref() {
            None => WriteState::Working,
            Some((at, why)) if at.elapsed() < REFUSAL_HOLDS => WriteState::Refusing(why.clone()),
            Some(_) => WriteState::Unsure,
        }
    }

    /// A probe passed: writes work again.
    pub(crate) fn recovered(&self) {
        if let Ok(mut last) = self.last_refusal.lock()
            && last.take().is_some()
        {
            tracing::info!("the database takes writes again");
        }
    }

    /// Commits the storage refused since the start.
    pub(crate) fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    fn refused(&self, error: &rusqlite::Error) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_refusal.lock() {
            if last.is_none() {
                tracing::error!(%error, "the database refuses writes; webhooks get 503 until it takes them again");
            }
            *last = Some((std::time::Instant::now(), error.to_string()));
        }
    }
}

/// One write of a batch. The writer knows no feature's rows: each feature
/// (runs, triggers' ticks, recipe claims, retention) hands it writes of its own.
pub(super) trait Write: Send {
    /// Applies the write inside the batch's transaction, keeping its outcome
    /// until the batch ends. Applied again, alone, if its batch failed.
    fn apply(&mut self, statements: &mut Statements) -> rusqlite::Result<()>;
    /// The batch committed: the caller gets its outcome.
    fn committed(self: Box<Self>);
    /// The batch failed (or the writer is gone): the caller gets the error.
    fn failed(self: Box<Self>, error: Error);
}

/// A write whose outcome is what its function returns.
struct Answered<F, T> {
    apply: F,
    outcome: Option<T>,
    reply: Reply<T>,
}

impl<F, T> Write for Answered<F, T>
where
    F: FnMut(&mut Statements) -> rusqlite::Result<T> + Send,
    T: Send,
{
    fn apply(&mut self, statements: &mut Statements) -> rusqlite::Result<()> {
        self.outcome = Some((self.apply)(statements)?);
        Ok(())
    }

    fn committed(self: Box<Self>) {
        let outcome = self
            .outcome
            .ok_or_else(|| Error::Corrupt("the writer lost the outcome of a write".to_owned()));
        // A caller that stopped waiting (its request was cancelled) is not an error.
        let _ = self.reply.send(outcome);
    }

    fn failed(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }
}

enum Message {
    Write(Box<dyn Write>),
    /// Checkpoints the last frames of the WAL after the writes queued before it
    /// (see `checkpoint.rs`).
    CatchUp,
    /// Closes the connection after the writes queued before it.
    Close(oneshot::Sender<()>),
}

/// The handle callers hold; the thread ends when it is closed.
#[derive(Clone)]
pub(super) struct Writer {
    sender: mpsc::Sender<Message>,
}

impl Writer {
    /// `commits` counts the transactions committed (the checkpoint task reads it).
    pub(super) fn start(
        connection: Connection,
        commits: Arc<AtomicU64>,
        health: Arc<WriteHealth>,
    ) -> Result<Self, Error> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("ferry-writer".to_owned())
            .spawn(move || run(connection, receiver, &commits, &health))
            .map_err(|error| Error::Write(format!("cannot start the writer thread: {error}")))?;
        Ok(Self { sender })
    }

    /// Sends a write and waits until it is committed (or failed): `apply` runs
    /// on the writer's thread inside a batch transaction, and again alone if its
    /// batch failed.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        apply: impl FnMut(&mut Statements) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, outcome) = oneshot::channel();
        self.send(Box::new(Answered {
            apply,
            outcome: None,
            reply,
        }))
        .await;
        outcome.await.map_err(|_| Error::Closed)?
    }

    /// Hands a write over; one the writer can no longer take fails as closed,
    /// through its own answer.
    pub(super) async fn send(&self, write: Box<dyn Write>) {
        if let Err(refused) = self.sender.send(Message::Write(write)).await
            && let Message::Write(write) = refused.0
        {
            write.failed(Error::Closed);
        }
    }

    /// Asks for a checkpoint between two batches, unless writes fill the queue.
    pub(super) fn catch_up(&self) {
        let _ = self.sender.try_send(Message::CatchUp);
    }

    /// Lets the writes queued so far commit, then closes the connection.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.sender.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

fn run(connection: Connection, mut receiver: mpsc::Receiver<Message>, commits: &AtomicU64, health: &WriteHealth) {
    let closed = match Statements::prepare(&connection) {
        Ok(mut statements) => serve(&mut statements, &mut receiver, commits, health),
        Err(error) => refuse(&mut receiver, &error),
    };
    // Writes sent after the close fail as "closed" when dropped.
    receiver.close();
    if let Err((_, error)) = connection.close() {
        tracing::warn!(%error, "closing the database connection");
    }
    if let Some(done) = closed {
        let _ = done.send(());
    }
}

/// Commits the writes as they come until a close (whose sender it gives back)
/// or until every handle is gone.
fn serve(
    statements: &mut Statements,
    receiver: &mut mpsc::Receiver<Message>,
    commits: &AtomicU64,
    health: &WriteHealth,
) -> Option<oneshot::Sender<()>> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        let mut after = gather(first, receiver, &mut batch);
        if after.is_none() && (2..GATHER_BELOW).contains(&batch.len()) {
            // Writes come from several callers at once: giving the CPU up once
            // lets the ones on their way share this commit. In the relay
            // benchmark it nearly halved the WAL written per webhook and
            // shortened the p99 acknowledgement; a short sleep instead gained
            // less and overslept by milliseconds when the CPUs were busy.
            std::thread::yield_now();
            if let Ok(next) = receiver.try_recv() {
                after = gather(next, receiver, &mut batch);
            }
        }
        if !batch.is_empty() {
            commit_batch(statements, std::mem::take(&mut batch), health);
            commits.fetch_add(1, Ordering::Relaxed);
        }
        match after {
            None => {}
            Some(After::CatchUp) => restart_wal(statements.connection),
            Some(After::Close(done)) => return Some(done),
        }
    }
    None
}

/// Fails every write: the connection could not prepare its statements (a
/// database the migrations did not make, or a broken file).
fn refuse(receiver: &mut mpsc::Receiver<Message>, error: &rusqlite::Error) -> Option<oneshot::Sender<()>> {
    tracing::error!(%error, "the writer cannot prepare its statements; every write fails");
    while let Some(message) = receiver.blocking_recv() {
        match message {
            Message::Write(write) => write.failed(Error::Write(format!(
                "the writer cannot prepare its statements: {error}"
            ))),
            Message::CatchUp => {}
            Message::Close(done) => return Some(done),
        }
    }
    None
}

/// What the writer does after committing its batch.
enum After {
    CatchUp,
    Close(oneshot::Sender<()>),
}

/// Adds `first` and the writes queued behind it to the batch, up to
/// [`MAX_BATCH`], stopping at a message that must wait for the batch's commit.
fn gather(first: Message, receiver: &mut mpsc::Receiver<Message>, batch: &mut Vec<Box<dyn Write>>) -> Option<After> {
    let mut next = Some(first);
    while let Some(message) = next.take() {
        match message {
            Message::Write(write) => batch.push(write),
            Message::CatchUp => return Some(After::CatchUp),
            Message::Close(done) => return Some(After::Close(done)),
        }
        if batch.len() < MAX_BATCH {
            next = receiver.try_recv().ok();
        }
    }
    None
}

/// Applies a batch in one transaction; nothing of it stays when it fails.
fn apply_all(statements: &mut Statements, batch: &mut [Box<dyn Write>]) -> rusqlite::Result<()> {
    statements.begin()?;
    let applied = batch
        .iter_mut()
        .try_for_each(|write| write.apply(statements))
        .and_then(|()| statements.commit());
    if applied.is_err() {
        statements.roll_back();
    }
    applied
}

fn commit_batch(statements: &mut Statements, mut batch: Vec<Box<dyn Write>>, health: &WriteHealth) {
    match apply_all(statements, &mut batch) {
        Ok(()) => batch.into_iter().for_each(|write| write.committed()),
        Err(error) if super::is_unavailable(&error) => {
            // A full disk or an I/O error would fail each write alone just the
            // same: the whole batch fails, each caller told it may try again.
            health.refused(&error);
            let message = error.to_string();
            for write in batch {
                write.failed(Error::Unavailable(message.clone()));
            }
        }
        Err(error) if batch.len() == 1 => {
            if let Some(write) = batch.pop() {
                write.failed(Error::Sqlite(error));
            }
        }
        Err(error) if !concerns_one_write(&error) => {
            tracing::error!(%error, writes = batch.len(), "a batch of writes failed");
            let message = error.to_string();
            for write in batch {
                write.failed(Error::Write(message.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = batch.len(), "a batch of writes failed; trying each alone");
            for write in batch {
                let mut alone = [write];
                let applied = apply_all(statements, &mut alone);
                let [write] = alone;
                match applied {
                    Ok(()) => write.committed(),
                    Err(error) => write.failed(Error::Sqlite(error)),
                }
            }
        }
    }
}

/// Copies the WAL's last frames and waits for the readers still on it, so that
/// the next commit starts the WAL from its beginning. No one else writes, so the
/// copy is complete; a reader on the WAL is waited for up to [`READER_WAIT`],
/// then the restart is left to the next catch-up.
fn restart_wal(connection: &Connection) {
    let wait = |timeout| {
        if let Err(error) = connection.busy_timeout(timeout) {
            tracing::warn!(%error, "setting the writer's busy timeout");
        }
    };
    wait(READER_WAIT);
    // Answers (busy, frames in the WAL, frames copied); busy says a reader held on.
    let checkpoint = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get::<_, i64>(0));
    wait(super::BUSY_TIMEOUT);
    match checkpoint {
        Ok(0) => {}
        Ok(_) => tracing::debug!("a reader kept the WAL from starting over; the next catch-up tries again"),
        Err(error) => tracing::warn!(%error, "WAL checkpoint failed; the next one tries again"),
    }
}

/// Whether an error comes from the content of one write (a broken constraint),
/// so that the other writes of its batch would commit without it.
fn concerns_one_write(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}
