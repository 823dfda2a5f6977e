//! The assembled daemon: recipes, store, engine and HTTP server wired together.
//! `ferry serve` runs one; integration tests start one in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::action::{DestinationPolicy, Destinations};
use crate::api::server::ConnectionLimits;
use crate::api::{self, ApiTokens, AppState, HookLimitSettings, HookLimits};
use crate::engine::Engine;
use crate::recipe::{self, Environment, LiveRecipes, RecipeSet};
use crate::store::{self, Durability, Store};
use crate::template::Templates;
use crate::trigger::timers::{self, TimerContext};

/// What the daemon needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub recipes: PathBuf,
    pub database_url: String,
    pub bind: String,
    /// The base URL others reach this daemon at; default `http://` + the bound address.
    pub public_url: Option<String>,
    /// What `${NAME}` in recipes is filled from.
    pub environment: Environment,
    /// Bearer tokens for the API; `None` leaves it open.
    pub api_tokens: Option<ApiTokens>,
    /// How long a shutdown waits for runs in flight.
    pub shutdown_grace: Duration,
    /// What an acknowledged webhook survives.
    pub durability: Durability,
    /// Webhooks waiting to be stored at once before more get 503.
    pub max_pending_webhooks: usize,
    /// The largest webhook body accepted, in bytes; larger ones get 413.
    pub max_body: usize,
    /// Rate limits of `/hooks/*`.
    pub hook_limits: HookLimitSettings,
    /// Where steps and polls may send requests.
    pub destinations: DestinationPolicy,
    /// Open HTTP connections and how long headers may take.
    pub connections: ConnectionLimits,
}

/// The default of [`Settings::max_body`]: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default of [`Settings::max_pending_webhooks`].
pub const DEFAULT_MAX_PENDING_WEBHOOKS: usize = 1024;

/// The default of [`Settings::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the recipes folder {}: {source}", path.display())]
    Recipes { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cannot listen on {bind}: {source}")]
    Bind { bind: String, source: std::io::Error },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A running daemon.
pub struct Daemon {
    local_addr: SocketAddr,
    public_url: String,
    recipes: LiveRecipes,
    store: Store,
    accepting: Arc<AtomicBool>,
    stop_dispatch: watch::Sender<bool>,
    stop_server: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    dispatcher: JoinHandle<()>,
    stop_timers: watch::Sender<bool>,
    timers: JoinSet<()>,
}

impl Daemon {
    /// Loads the recipes, opens the store, binds and starts serving.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let set: RecipeSet =
            recipe::load_folder(&settings.recipes, &settings.environment).map_err(|source| StartError::Recipes {
                path: settings.recipes.clone(),
                source,
            })?;
        let recipes = LiveRecipes::new(set);
        let store = Store::open(&settings.database_url, settings.durability).await?;
        // Runs a previous process left mid-way resume where they stopped.
        let resumed = store.requeue_interrupted().await?;
        if resumed > 0 {
            tracing::info!(runs = resumed, "resuming runs interrupted by the last stop");
        }
        let listener = TcpListener::bind(&settings.bind)
            .await
            .map_err(|source| StartError::Bind {
                bind: settings.bind.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            bind: settings.bind.clone(),
            source,
        })?;
        let public_url = settings
            .public_url
            .clone()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local_addr}"));

        let destinations = Destinations::new(settings.destinations)?;
        // Counters only count once a recorder is installed.
        api::metrics::recorder();
        let templates = Arc::new(Templates::new());
        let engine = Engine::new(
            store.clone(),
            recipes.clone(),
            templates.clone(),
            destinations.clone(),
            public_url.clone(),
        );
        let (stop_dispatch, dispatch_signal) = watch::channel(false);
        let dispatcher = tokio::spawn(Arc::clone(&engine).dispatch(dispatch_signal, settings.shutdown_grace));
        let accepting = Arc::new(AtomicBool::new(true));
        let (stop_timers, timers_signal) = watch::channel(false);
        let timer_context = TimerContext {
            store: store.clone(),
            waker: engine.waker(),
            templates: templates.clone(),
            destinations: destinations.clone(),
            public_url: public_url.clone(),
        };
        let timers = timers::start(timer_context, &recipes.current(), timers_signal);

        let router = api::router(AppState {
            store: store.clone(),
            recipes: recipes.clone(),
            waker: engine.waker(),
            public_url: public_url.clone(),
            tokens: settings.api_tokens.clone(),
            accepting: accepting.clone(),
            pending: Arc::new(tokio::sync::Semaphore::new(settings.max_pending_webhooks)),
            templates,
            completions: engine.completions(),
            limits: HookLimits::start(settings.hook_limits),
            max_body: settings.max_body,
        });
        let (stop_server, server_signal) = watch::channel(false);
        let server = tokio::spawn(api::server::serve(
            listener,
            router,
            settings.connections,
            server_signal,
        ));

        Ok(Self {
            local_addr,
            public_url,
            recipes,
            store,
            accepting,
            stop_dispatch,
            stop_server,
            server,
            dispatcher,
            stop_timers,
            timers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of this daemon (`ferry.url` in templates).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn recipes(&self) -> Arc<RecipeSet> {
        self.recipes.current()
    }

    /// Stops taking webhooks (they get `503` with `Retry-After` meanwhile), lets the
    /// runs in flight finish within the grace period, hands the rest back to the
    /// queue, then stops serving. Nothing acknowledged is lost.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.accepting.store(false, Ordering::SeqCst);
        let _ = self.stop_timers.send(true);
        while let Some(ended) = self.timers.join_next().await {
            if let Err(error) = ended {
                tracing::error!(%error, "a schedule or poll task failed");
            }
        }
        let _ = self.stop_dispatch.send(true);
        if let Err(error) = self.dispatcher.await {
            tracing::error!(%error, "the dispatcher task failed");
        }
        let _ = self.stop_server.send(true);
        let served = self
            .server
            .await
            .unwrap_or_else(|error| Err(std::io::Error::other(error)));
        self.store.close().await;
        served
    }
}
