//! How a built request goes on the wire.
//!
//! Plain `http://` requests go straight through hyper's pooled client when no
//! proxy and no destination policy applies: reqwest's layers above hyper (its
//! redirect and proxy machinery, a second parse of the URL for the answer) were a
//! measurable share of a webhook's whole cost in the relay benchmark
//! (docs/benchmarks.md). Everything else — HTTPS, a proxy from the
//! environment, the private-address policy's resolver, credentials in the URL —
//! goes through reqwest, which does those.

use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};

/// Any error on the way, with its causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's body, whichever client read it.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The `User-Agent` of every request Ferry sends.
pub(super) const AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// How long an unused connection stays in a pool.
const IDLE: Duration = Duration::from_secs(90);
/// TCP keepalive probes: first after, then every.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Unanswered probes before a connection counts as dead.
const KEEPALIVE_RETRIES: u32 = 3;
/// How long sent data may go unacknowledged before the connection is dropped.
#[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
const USER_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's client for `http://` URLs, with reqwest's defaults (the constants
/// above are reqwest 0.13's), so a step behaves the same on either client.
#[derive(Debug, Clone)]
pub(super) struct PlainHttp {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl PlainHttp {
    pub(super) fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(KEEPALIVE));
        connector.set_keepalive_interval(Some(KEEPALIVE));
        connector.set_keepalive_retries(Some(KEEPALIVE_RETRIES));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        connector.set_tcp_user_timeout(Some(USER_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { client }
    }

    /// Whether this client can send to `url` as reqwest would: plain HTTP
    /// without credentials in the URL (reqwest turns those into a header).
    pub(super) fn serves(url: &Url) -> bool {
        url.scheme() == "http" && url.username().is_empty() && url.password().is_none()
    }

    pub(super) async fn send(
        &self,
        method: Method,
        url: &Url,
        mut headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<hyper::Response<Body>, BoxError> {
        // reqwest's defaults, which a step's own headers override.
        headers.entry(USER_AGENT).or_insert(HeaderValue::from_static(AGENT));
        headers.entry(ACCEPT).or_insert(HeaderValue::from_static("*/*"));
        // The fragment is not sent.
        let target = &url[..url::Position::AfterQuery];
        let mut request = hyper::Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = target.parse()?;
        *request.headers_mut() = headers;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("error sending request: {}", super::error::describe(&error)))?;
        Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
    }
}

/// Sends with reqwest, giving the answer in the same shape as [`PlainHttp`].
pub(super) async fn send_reqwest(
    client: &reqwest::Client,
    method: Method,
    url: &Url,
    headers: HeaderMap,
    body: Option<Bytes>,
) -> Result<hyper::Response<Body>, BoxError> {
    let mut request = client.request(method, url.clone()).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    // Without the URL: it may hold secrets, and the request record has it.
    let response = request.send().await.map_err(|error| error.without_url())?;
    let response = hyper::Response::<reqwest::Body>::from(response);
    Ok(response.map(|body| body.map_err(|error| BoxError::from(error.without_url())).boxed_unsync()))
}
