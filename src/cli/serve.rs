//! `ferry serve`.

use std::process::ExitCode;

use super::ServeArgs;
use crate::api::ApiTokens;
use crate::daemon::{Daemon, Settings};
use crate::recipe::Trigger;

pub(super) fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let environment = match super::environment(args.env_file.as_deref()) {
        Ok(environment) => environment,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // Tokens come from the environment only: a flag would show in `ps`.
    let api_tokens = match ApiTokens::from_settings(
        std::env::var("FERRY_API_TOKENS").ok().as_deref(),
        std::env::var("FERRY_API_READ_TOKENS").ok().as_deref(),
    ) {
        Ok(tokens) => tokens,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if api_tokens.is_none() {
        eprintln!("warning: FERRY_API_TOKENS is not set: the API under /api/v1 is open to anyone who can reach it");
    }
    let settings = Settings {
        recipes: args.recipes,
        database_url: args.database_url,
        bind: args.bind,
        public_url: args.public_url,
        environment,
        api_tokens,
        shutdown_grace: args.shutdown_grace,
        durability: args.sync,
        max_pending_webhooks: args.max_pending_webhooks,
        max_body: args.max_body,
        max_body_memory: args.max_body_memory,
        hook_limits: crate::api::HookLimitSettings {
            per_ip: args.hook_rate_per_ip.0,
            failures_per_ip: args.hook_fail_rate_per_ip.0,
            trust_forwarded_for: args.trust_forwarded_for,
        },
        destinations: crate::action::DestinationPolicy {
            deny_private: args.deny_private_destinations,
        },
        retention: args.retention.0,
        redact_headers: args
            .redact_headers
            .iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect(),
        render_budget: crate::template::RenderBudget {
            work: args.render_max_work,
            bytes: args.render_max_bytes,
            results: args.run_max_results,
        },
        disk_low: args.disk_low.map(|bytes| bytes as u64),
        connections: crate::api::server::ConnectionLimits {
            max_connections: args.max_connections,
            ..crate::api::server::ConnectionLimits::default()
        },
    };
    let daemon = match Daemon::start(settings).await {
        Ok(daemon) => daemon,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

    let recipes = daemon.recipes();
    for recipe in recipes.recipes() {
        let state = if recipe.enabled { "" } else { " (disabled)" };
        let fires = match &recipe.trigger {
            Trigger::Webhook { path, .. } => format!("webhook POST {}/hooks/{path}", daemon.public_url()),
            Trigger::Schedule { schedule, .. } => format!("schedule {schedule}"),
            Trigger::Poll(poll) => format!("poll {}", poll.schedule),
            Trigger::Failure(watched) => format!("failure of {}", watched_text(watched)),
        };
        println!("recipe {}: {fires}{state}", recipe.id);
    }
    for problem in recipes.problems() {
        eprintln!("error: {problem}");
    }
    for warning in recipes.recipes().flat_map(|recipe| recipe.warnings.iter()) {
        eprintln!("warning: {warning}");
    }
    for warning in recipes.watch_warnings() {
        eprintln!("warning: {warning}");
    }
    if recipes.is_empty() && !recipes.has_problems() {
        eprintln!("warning: no recipes found");
    }
    println!(
        "ferry listening on http://{} ({} recipes)",
        daemon.local_addr(),
        recipes.len()
    );

    stop_signal().await;
    tracing::info!("shutting down: webhooks now get 503; runs in flight may finish");
    match daemon.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn stop_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("error: cannot wait for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                eprintln!("error: cannot wait for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The recipes a failure trigger watches, as `ferry serve` lists them.
fn watched_text(watched: &crate::recipe::Watched) -> String {
    match watched {
        crate::recipe::Watched::All => "every recipe".to_owned(),
        crate::recipe::Watched::Only(_) => watched.names().join(", "),
    }
}
