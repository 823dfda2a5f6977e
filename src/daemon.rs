//! The assembled daemon: recipes, store, engine and HTTP server wired together.
//! `ferry serve` runs one; integration tests start one in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::action::{DestinationPolicy, Destinations};
use crate::api::server::ConnectionLimits;
use crate::api::{self, ApiTokens, AppState, HookLimitSettings, HookLimits};
use crate::engine::Engine;
use crate::observe::Metrics;
use crate::recipe::reload::Change;
use crate::recipe::watch::ChangeFeed;
use crate::recipe::watch::{FolderWatch, watch_folder};
use crate::recipe::{self, Environment, LiveRecipes, RecipeSet};
use crate::store::{self, Durability, Store};
use crate::template::Templates;
use crate::trigger::timers::{TimerContext, Timers};

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
    /// Webhook body bytes held in memory at once; past it webhooks get 503.
    pub max_body_memory: usize,
    /// Rate limits of `/hooks/*`.
    pub hook_limits: HookLimitSettings,
    /// Where steps and polls may send requests.
    pub destinations: DestinationPolicy,
    /// Open HTTP connections and how long headers may take.
    pub connections: ConnectionLimits,
    /// Finished runs older than this are deleted; `None` keeps them all.
    pub retention: Option<Duration>,
    /// Callers' headers stored as `[redacted]` beyond the built-in credential list.
    pub redact_headers: Vec<String>,
    /// What one render (a step's request, a condition, a log line) may cost.
    pub render_budget: crate::template::RenderBudget,
    /// Free bytes beside the database below which a warning is logged; `None`:
    /// 1 GiB or a tenth of the file system, whichever is smaller.
    pub disk_low: Option<u64>,
}

/// The default of [`Settings::retention`]: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

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
    timers: Arc<tokio::sync::Mutex<Timers>>,
    /// `None` when the folder cannot be watched (the daemon runs on, without
    /// hot reload).
    reload: Option<Reload>,
}

/// The watch of the recipes folder and the task that reloads on its signals.
struct Reload {
    _watch: FolderWatch,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Daemon {
    /// Loads the recipes, opens the store, binds and starts serving.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let store = Store::open(&settings.database_url, settings.durability).await?;
        // Ids and paths stay with the files that claimed them first, across restarts.
        let claims = store.recipe_claims().await?;
        let (folder, environment) = (settings.recipes.clone(), settings.environment.clone());
        let loaded =
            tokio::task::spawn_blocking(move || recipe::load_folder_claimed(&folder, &environment, &claims)).await;
        let set: RecipeSet = match loaded {
            Ok(loaded) => loaded.map_err(|source| StartError::Recipes {
                path: settings.recipes.clone(),
                source,
            })?,
            Err(error) => {
                return Err(StartError::Recipes {
                    path: settings.recipes.clone(),
                    source: std::io::Error::other(error),
                });
            }
        };
        store.save_recipe_claims(set.claims()).await?;
        let recipes = LiveRecipes::new(set);
        // Runs a previous process left mid-way resume where they stopped.
        let resumed = store.requeue_interrupted().await?;
        store::space::start(store.clone(), settings.disk_low);
        if let Some(retention) = settings.retention {
            store::retention::start(store.clone(), retention);
        }
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
        let metrics = Metrics::new();
        metrics.start_upkeep();
        metrics.recipe_files_parsed(recipes.current().parsed());
        let templates = Arc::new(Templates::with_budget(settings.render_budget));
        let engine = Engine::new(
            store.clone(),
            recipes.clone(),
            templates.clone(),
            destinations.clone(),
            public_url.clone(),
            metrics.clone(),
        );
        let (stop_dispatch, dispatch_signal) = watch::channel(false);
        let dispatcher = tokio::spawn(Arc::clone(&engine).dispatch(dispatch_signal, settings.shutdown_grace));
        let accepting = Arc::new(AtomicBool::new(true));
        let timer_context = TimerContext {
            store: store.clone(),
            waker: engine.waker(),
            templates: templates.clone(),
            destinations: destinations.clone(),
            public_url: public_url.clone(),
            metrics: metrics.clone(),
        };
        let mut timers = Timers::new(timer_context);
        timers.sync(&recipes.current()).await;
        let timers = Arc::new(tokio::sync::Mutex::new(timers));
        let reload = match watch_folder(&settings.recipes) {
            Ok((watch, changes)) => {
                let (stop, stopped) = watch::channel(false);
                let reloader = Reloader {
                    store: store.clone(),
                    folder: settings.recipes.clone(),
                    environment: settings.environment.clone(),
                    recipes: recipes.clone(),
                    timers: timers.clone(),
                    metrics: metrics.clone(),
                };
                let task = tokio::spawn(reloader.run(changes, stopped));
                Some(Reload {
                    _watch: watch,
                    stop,
                    task,
                })
            }
            Err(error) => {
                tracing::warn!(%error, "recipes will not be reloaded on change; restart to load changes");
                None
            }
        };

        let router = api::router(AppState {
            store: store.clone(),
            recipes: recipes.clone(),
            engine: engine.clone(),
            public_url: public_url.clone(),
            tokens: settings.api_tokens.clone(),
            accepting: accepting.clone(),
            pending: Arc::new(tokio::sync::Semaphore::new(settings.max_pending_webhooks)),
            templates,
            completions: engine.completions(),
            limits: HookLimits::start(settings.hook_limits),
            max_body: settings.max_body,
            body_memory: api::BodyMemory::new(settings.max_body_memory),
            redact_headers: settings
                .redact_headers
                .iter()
                .map(|name| name.to_ascii_lowercase())
                .collect(),
            metrics: metrics.clone(),
        });
        let (stop_server, server_signal) = watch::channel(false);
        let server = tokio::spawn(api::server::serve(
            listener,
            router,
            settings.connections,
            metrics.clone(),
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
            timers,
            reload,
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
        if let Some(reload) = self.reload.take() {
            let _ = reload.stop.send(true);
            if let Err(error) = reload.task.await {
                tracing::error!(%error, "the reload task failed");
            }
        }
        self.timers.lock().await.stop_all().await;
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

/// What the reload task works with.
struct Reloader {
    store: Store,
    folder: PathBuf,
    environment: Environment,
    recipes: LiveRecipes,
    timers: Arc<tokio::sync::Mutex<Timers>>,
    metrics: Metrics,
}

impl Reloader {
    /// Reloads the changed recipe files on each burst of the folder's watch: the
    /// new set is swapped in at once, then the schedule and poll tasks of the
    /// changed recipes follow it.
    async fn run(self, feed: ChangeFeed, mut stop: watch::Receiver<bool>) {
        let Self {
            store,
            folder,
            environment,
            recipes,
            timers,
            metrics,
        } = self;
        loop {
            let changed = tokio::select! {
                changed = feed.next() => changed,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            let (folder, environment) = (folder.clone(), environment.clone());
            let previous = recipes.current();
            let loaded =
                tokio::task::spawn_blocking(move || recipe::reload_folder(&folder, &environment, &previous, &changed))
                    .await;
            let reloaded = match loaded {
                Ok(Ok(reloaded)) => reloaded,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot read the recipes folder; keeping the recipes in force");
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "the reload failed; keeping the recipes in force");
                    continue;
                }
            };
            metrics.recipe_files_parsed(reloaded.set.parsed());
            let touched = reloaded
                .changes
                .iter()
                .filter_map(Change::recipe)
                .map(str::to_owned)
                .collect::<Vec<_>>();
            for change in &reloaded.changes {
                log_change(change);
            }
            if !reloaded.claims.is_empty()
                && let Err(error) = store.update_recipe_claims(&reloaded.claims).await
            {
                // Kept in memory: this process still enforces them.
                tracing::warn!(%error, "cannot store which files own recipe ids and paths; a restart may forget new claims");
            }
            recipes.replace(reloaded.set);
            timers.lock().await.follow(&recipes.current(), touched).await;
        }
    }
}

fn log_change(change: &Change) {
    let first_problem = |problems: &[recipe::Diagnostic]| problems.first().map(ToString::to_string).unwrap_or_default();
    match change {
        Change::Added { id, version } => tracing::info!(recipe = %id, %version, "recipe added"),
        Change::Updated { id, from, to } => tracing::info!(recipe = %id, %from, %to, "recipe reloaded"),
        Change::Removed { id } => tracing::info!(recipe = %id, "recipe removed; its runs in flight finish"),
        Change::Kept { id, problems } => tracing::warn!(
            recipe = %id,
            problems = problems.len(),
            error = %first_problem(problems),
            "the recipe's new version does not load; its previous version keeps running"
        ),
        Change::Failed { problems } => tracing::warn!(
            problems = problems.len(),
            error = %first_problem(problems),
            "a recipe file does not load"
        ),
    }
}
