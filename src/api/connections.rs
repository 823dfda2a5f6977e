//! Connection slots that follow progress: slow clients cannot hold the listener
//! shut.
//!
//! A new connection takes one of `max_connections` slots. A connection that
//! sends less than [`MIN_BYTES`] in a [`WINDOW`] while it is not waiting for its
//! answer — an idle keep-alive, headers or a body dripped a byte at a time —
//! gives its slot up and goes on as a *slow* connection, of which there may be a
//! few times as many; it is still served. Past that a connection that turns slow
//! is shed (closed). So a thousand connections dripping bodies take the slow
//! places and leave the slots to clients that send at a normal rate, whatever
//! their address (behind a proxy every client has the same one).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How often a connection's progress is looked at.
pub const WINDOW: Duration = Duration::from_secs(1);

/// What a connection must send in a window, unless it waits for its answer.
pub const MIN_BYTES: u64 = 1024;

/// Slow connections there may be, per slot.
pub const SLOW_PER_SLOT: usize = 4;

/// Where a connection's request stands.
const WAITING_FOR_REQUEST: u8 = 0;
const READING_BODY: u8 = 1;
const WORKING: u8 = 2;

/// What a connection has read, and whether it owes bytes: shared by its I/O,
/// its watchdog and its request handlers.
#[derive(Debug, Default)]
pub struct Progress {
    read: AtomicU64,
    stage: AtomicU8,
}

impl Progress {
    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Whether the client owes bytes: it is sending a request (or between
    /// requests), not waiting for an answer.
    pub fn owes_bytes(&self) -> bool {
        self.stage.load(Ordering::Relaxed) != WORKING
    }

    /// A request's headers arrived; its handler runs.
    pub fn working(&self) {
        self.stage.store(WORKING, Ordering::Relaxed);
    }

    /// The handler reads the request's body.
    pub fn reading_body(&self) {
        self.stage.store(READING_BODY, Ordering::Relaxed);
    }

    /// The answer is out; the next request, if any, is awaited.
    pub fn waiting(&self) {
        self.stage.store(WAITING_FOR_REQUEST, Ordering::Relaxed);
    }
}

/// A request's connection progress, for handlers that read a body themselves.
#[derive(Debug, Clone)]
pub struct ConnectionProgress(pub Arc<Progress>);

/// A stream that counts what is read from it.
pub struct Metered<S> {
    inner: S,
    progress: Arc<Progress>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        self.progress.read.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether a connection that read `read_in_window` bytes in the last window is
/// slow: it owes bytes and sent fewer than [`MIN_BYTES`].
pub fn is_slow(progress: &Progress, read_in_window: u64) -> bool {
    progress.owes_bytes() && read_in_window < MIN_BYTES
}

/// Raises this process's open-file limit to its hard limit: each connection is
/// a file, and a soft limit of 1024 would stop accepting long before the
/// connection limits do. Gives the limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(maximum) = limit.maximum
        && limit.current.is_none_or(|current| current < maximum)
    {
        limit.current = Some(maximum);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_slow_only_while_it_owes_bytes() {
        let progress = Progress::default();
        assert!(is_slow(&progress, 0), "an idle connection between requests");
        assert!(!is_slow(&progress, MIN_BYTES), "one that sends at the minimum rate");
        progress.working();
        assert!(!is_slow(&progress, 0), "one waiting for its answer");
        progress.reading_body();
        assert!(is_slow(&progress, 10), "one dripping its body");
        progress.waiting();
        assert!(is_slow(&progress, 0));
    }
}
