//! The `http` action: one request sent with the daemon's shared client.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Bytes;

use super::sender::BoxError;
use super::{AttemptError, Destinations, Outcome, Refused};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// A rendered request, exactly as it is sent and recorded.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: reqwest::Method,
    /// Full URL including the rendered query.
    pub url: String,
    /// `url` already parsed (a recipe's fixed URL), else parsed when sent.
    pub parsed_url: Option<reqwest::Url>,
    pub headers: Vec<(String, String)>,
    pub body: Option<RequestBody>,
    /// Non-2xx statuses that count as success.
    pub accept: Vec<u16>,
    /// Headers that carry credentials built by `auth:`: sent, never recorded.
    pub credential_headers: Vec<String>,
}

/// The body of a request.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Json(JsonBody),
    Text(String),
}

/// A JSON body, serialised once: the text sent is the text recorded, and a
/// large body costs one serialisation, not one per attempt and one per record.
#[derive(Debug, Clone)]
pub struct JsonBody {
    value: Value,
    text: String,
}

impl JsonBody {
    pub fn new(value: Value) -> Self {
        let text = crate::json::text(&value);
        Self { value, text }
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The body as it is sent.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl HttpRequest {
    /// The request as the engine stores it to send it again, without the
    /// credential headers (they are rendered again at each attempt).
    pub fn to_sealable(&self) -> Value {
        let headers: Vec<Value> = self
            .headers
            .iter()
            .filter(|(name, _)| !self.credential_headers.contains(name))
            .map(|(name, value)| serde_json::json!([name, value]))
            .collect();
        let body = match &self.body {
            Some(RequestBody::Json(json)) => serde_json::json!({"json": json.value()}),
            Some(RequestBody::Text(text)) => serde_json::json!({"text": text}),
            None => Value::Null,
        };
        serde_json::json!({
            "method": self.method.as_str(),
            "url": self.url,
            "headers": headers,
            "body": body,
            "accept": self.accept,
        })
    }

    /// The inverse of [`Self::to_sealable`]; `None` if the document is not one.
    pub fn from_sealed(stored: &Value) -> Option<Self> {
        let method = reqwest::Method::from_bytes(stored["method"].as_str()?.as_bytes()).ok()?;
        let headers = stored["headers"]
            .as_array()?
            .iter()
            .map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        let body = match &stored["body"] {
            Value::Null => None,
            body => match (body.get("json"), body.get("text").and_then(Value::as_str)) {
                (Some(json), _) => Some(RequestBody::Json(JsonBody::new(json.clone()))),
                (None, Some(text)) => Some(RequestBody::Text(text.to_owned())),
                (None, None) => return None,
            },
        };
        let accept = stored["accept"]
            .as_array()?
            .iter()
            .map(|status| status.as_u64().and_then(|status| u16::try_from(status).ok()))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            method,
            url: stored["url"].as_str()?.to_owned(),
            parsed_url: None,
            headers,
            body,
            accept,
            credential_headers: Vec::new(),
        })
    }
}

/// An answer, with the whole body (the record truncates, later steps do not).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Map<String, Value>,
    /// The raw body as text (lossy UTF-8).
    pub text: String,
    /// The body parsed as JSON when it is JSON, else the text.
    pub body: Value,
}

/// The largest answer read from a destination or a poll source; a larger one
/// fails the attempt instead of filling memory.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Most redirects a GET follows.
const MAX_REDIRECTS: usize = 5;

/// Sends `request` and waits at most `timeout` for the whole answer. A GET
/// follows redirects (each hop checked like the first); other methods do not:
/// their answer is the 3xx itself, which fails the attempt unless accepted.
pub async fn execute(destinations: &Destinations, request: &HttpRequest, timeout: Duration) -> Outcome {
    let Built { mut url, headers, body } = match build(destinations, request) {
        Ok(built) => built,
        Err(error) => return Outcome::failed(error),
    };
    let answer = tokio::time::timeout(timeout, async {
        // Only a GET follows redirects; credentials stay with the host they
        // were meant for.
        let hop_headers = (request.method == reqwest::Method::GET)
            .then(|| without_credentials(&headers, &request.credential_headers));
        let mut response = destinations.send(request.method.clone(), &url, headers, body).await?;
        let mut hops = 0;
        while let Some(hop_headers) = &hop_headers
            && response.status().is_redirection()
            && hops < MAX_REDIRECTS
        {
            let Some(next) = redirect_target(response.headers(), &url) else {
                break;
            };
            if let Err(error) = destinations.check(&next) {
                return Ok(Err(match error {
                    AttemptError::Build(message) => AttemptError::Build(format!("redirect not followed: {message}")),
                    refused => refused,
                }));
            }
            url = next;
            response = destinations
                .send(reqwest::Method::GET, &url, hop_headers.clone(), None)
                .await?;
            hops += 1;
        }
        let status = response.status().as_u16();
        let headers = crate::headers::to_object(response.headers());
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| crate::headers::is_json(&crate::headers::media_type(value)));
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(chunk) = frame?.into_data() else {
                continue;
            };
            if bytes.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Ok(Err(AttemptError::TooLarge {
                    method: request.method.to_string(),
                    url: crate::redact::without_userinfo(&request.url).into_owned(),
                    limit_mib: MAX_RESPONSE_BODY / (1024 * 1024),
                }));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = parse_body(&text, is_json);
        Ok::<_, BoxError>(Ok(HttpResponse {
            status,
            headers,
            text,
            body,
        }))
    })
    .await;

    match answer {
        Err(_) => Outcome::failed(AttemptError::Timeout(timeout)),
        // A destination the policy refuses stays refused, also when the refusal
        // came back through the client as a connection error's cause.
        Ok(Err(error)) => match refusal_among_causes(&*error) {
            Some(refused) => Outcome::failed(refused.clone()),
            None => Outcome::failed(AttemptError::Transport(super::error::describe(&*error))),
        },
        Ok(Ok(Err(error))) => Outcome::failed(error),
        Ok(Ok(Ok(response))) => classify(request, response),
    }
}

/// Whether an answer is a success (2xx or `accept`ed) or a failure, and if so
/// whether a retry may mend it and when the destination asked to be retried.
pub fn classify(request: &HttpRequest, response: HttpResponse) -> Outcome {
    if (200..300).contains(&response.status) || request.accept.contains(&response.status) {
        return Outcome::Succeeded {
            response: Some(response),
        };
    }
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    let error = format!(
        "HTTP {} {reason} from {} {}",
        response.status,
        request.method,
        crate::redact::without_userinfo(&request.url)
    )
    .replace("  ", " ");
    let retry_after = match response.status {
        429 | 503 => response
            .headers
            .get("retry-after")
            .and_then(Value::as_str)
            .and_then(|value| super::parse_retry_after(value, std::time::SystemTime::now())),
        _ => None,
    };
    Outcome::Failed {
        error: AttemptError::Status {
            status: response.status,
            message: error,
            retry_after,
        },
        response: Some(response),
    }
}

/// The policy's refusal, if it is the error or one of its causes.
fn refusal_among_causes<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = error.source();
    }
    None
}

/// Where a redirect answer points, resolved against the URL it came from.
fn redirect_target(headers: &HeaderMap, from: &reqwest::Url) -> Option<reqwest::Url> {
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    from.join(location).ok()
}

fn without_credentials(headers: &HeaderMap, credentials: &[String]) -> HeaderMap {
    let mut kept = headers.clone();
    for name in credentials {
        kept.remove(name.as_str());
    }
    kept
}

/// A request checked and ready to send.
struct Built {
    url: reqwest::Url,
    headers: HeaderMap,
    body: Option<Bytes>,
}

fn build(destinations: &Destinations, request: &HttpRequest) -> Result<Built, AttemptError> {
    let url = match &request.parsed_url {
        Some(url) => url.clone(),
        None => reqwest::Url::parse(&request.url)
            .map_err(|error| AttemptError::Build(format!("`{}` is not a valid URL: {error}", request.url)))?,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AttemptError::Build(format!(
            "`{}` is not an http or https URL",
            request.url
        )));
    }
    destinations.check(&url)?;
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| AttemptError::Build(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| AttemptError::Build(format!("the value of header `{name}` is not valid in HTTP")))?;
        headers.append(name, value);
    }
    let body = match &request.body {
        Some(RequestBody::Json(json)) => Some(Bytes::from(json.text().to_owned())),
        Some(RequestBody::Text(text)) => Some(Bytes::from(text.clone())),
        None => None,
    };
    Ok(Built { url, headers, body })
}

fn parse_body(text: &str, is_json: bool) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if is_json && let Ok(json) = serde_json::from_str(text) {
        return json;
    }
    Value::String(text.to_owned())
}
