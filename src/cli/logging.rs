//! The daemon's log: `FERRY_LOG` (a `RUST_LOG`-style filter, default `info`) and
//! `FERRY_LOG_FORMAT` (`text` or `json`), on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Libraries whose debug output shows request data (handlebars dumps the template
/// context, hyper and h2 headers): capped whatever `FERRY_LOG` says, so that a
/// secret in a header or a response never reaches the log.
const CAPPED: &[&str] = &[
    "handlebars=warn",
    "hyper=info",
    "hyper_util=info",
    "h2=info",
    "reqwest=info",
    "rustls=info",
];

/// Installs the global subscriber.
pub fn init() {
    let user = std::env::var("FERRY_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut filter = EnvFilter::try_new(&user).unwrap_or_else(|error| {
        eprintln!("warning: FERRY_LOG=`{user}` is not a valid filter ({error}); using `info`");
        EnvFilter::new("info")
    });
    for directive in CAPPED {
        if let Ok(directive) = directive.parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    let json = std::env::var("FERRY_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
