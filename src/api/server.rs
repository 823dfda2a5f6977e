//! The HTTP server loop: axum's router on hyper, with what `axum::serve` does not
//! let one set — a deadline for a request's headers (a client that sends them a
//! byte a second is cut off), a cap on connections that send (past it, new ones
//! wait in the kernel's backlog instead of each holding memory here), and slots
//! that slow connections give up (see `connections.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_service::Service as _;

use super::connections::{self, ConnectionProgress, Metered, Progress};

/// How connections are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most (`FERRY_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The most a connection buffers of what it reads.
const READ_BUFFER: usize = 64 * 1024;

/// The default of [`ConnectionLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Serves `router` until `stop` turns true, then lets the requests under way
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: crate::observe::Metrics,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = limits.max_connections.max(1);
    let open = Arc::new(Semaphore::new(slots));
    // Slow connections are files too: as many as the open-file limit leaves.
    let files = connections::raise_open_file_limit().unwrap_or(1024);
    let slow_places = (slots * connections::SLOW_PER_SLOT)
        .min(usize::try_from(files).unwrap_or(usize::MAX).saturating_sub(slots + 256))
        .max(1);
    let slow = Arc::new(Semaphore::new(slow_places));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // What a connection buffers of what it reads: hyper's default is several
        // times larger and added up under many uploads at once; headers and body
        // frames fit well within 64 KiB (a body is taken frame by frame, see `hooks.rs`).
        .max_buf_size(READ_BUFFER)
        // A client that closes its sending side after the request still gets
        // the answer (a truncated body's 400 included).
        .half_close(true);
    let builder = Arc::new(builder);

    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, a connection reset before accept: the
                // listener itself is fine; try again shortly.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let router = router.clone();
        let progress = Arc::new(Progress::default());
        let service = {
            let progress = progress.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(ConnectionProgress(progress.clone()));
                progress.working();
                let mut router = router.clone();
                let progress = progress.clone();
                async move {
                    let response = router.call(request).await.unwrap_or_else(|never| match never {});
                    progress.waiting();
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let stream = Metered::new(stream, progress.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let (slow, metrics) = (slow.clone(), metrics.clone());
        tokio::spawn(async move {
            tokio::pin!(connection);
            let mut permit = Some(permit);
            let mut slow_place = None;
            let mut windows =
                tokio::time::interval_at(tokio::time::Instant::now() + connections::WINDOW, connections::WINDOW);
            let mut read_before = 0;
            loop {
                tokio::select! {
                    ended = &mut connection => {
                        if let Err(error) = ended {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    _ = windows.tick(), if permit.is_some() => {
                        let read = progress.read();
                        let slow_now = connections::is_slow(&progress, read - read_before);
                        read_before = read;
                        if slow_now {
                            // Its slot goes to a client that sends; it goes on slowly,
                            // or is shed when the slow places are full.
                            match slow.clone().try_acquire_owned() {
                                Ok(place) => {
                                    slow_place = Some(place);
                                    permit = None;
                                }
                                Err(_) => {
                                    metrics.connection_shed();
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            drop((permit, slow_place));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
