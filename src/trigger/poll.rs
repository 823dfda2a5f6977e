//! One poll: fetch the source, pick the items, key each one. Which items are new
//! is the store's decision (in the same transaction that starts their runs).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Event;
use crate::action::{self, AttemptError, HttpRequest, HttpResponse, Outcome};
use crate::recipe::{FirstPoll, ItemsPath, PollTrigger, Recipe};
use crate::store::{FirstPollRule, TickWork};
use crate::template::{TemplateError, Templates};

/// Why a poll found no items; its text is what the trigger's state and the
/// log say.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot render the poll request: {0}")]
    Render(TemplateError),
    /// The source did not answer, or not with a success.
    #[error(transparent)]
    Source(AttemptError),
    #[error("the source gave no answer")]
    NoAnswer,
    #[error("the answer of {method} {url} is not JSON: {reason}")]
    NotJson {
        method: String,
        url: String,
        reason: String,
    },
    #[error("`items: {0}` found nothing in the answer; expected it to select the items (an array)")]
    NoItems(String),
    #[error("`key` of item {index}: {error}")]
    Key { index: usize, error: TemplateError },
    #[error("`key` rendered empty for item {0}; every item needs an identity")]
    EmptyKey(usize),
    /// The next page could not be found.
    #[error("`paginate`: {0}")]
    Page(String),
}

/// What a poll needs from the daemon.
pub struct PollContext<'a> {
    pub templates: &'a Templates,
    pub destinations: &'a crate::action::Destinations,
    pub public_url: &'a str,
}

/// Fetches the source once. `last_success_at` is the last poll that worked, for
/// "since" queries (`trigger.last_success_at`).
pub async fn poll(
    context: &PollContext<'_>,
    recipe: &Recipe,
    poll: &PollTrigger,
    scheduled_at: DateTime<Utc>,
    last_success_at: Option<&str>,
) -> TickWork {
    match fetch_items(context, recipe, poll, scheduled_at, last_success_at).await {
        Ok(items) => TickWork::Polled {
            items,
            first: match poll.first {
                FirstPoll::Skip => FirstPollRule::Remember,
                FirstPoll::Emit => FirstPollRule::Run,
            },
        },
        Err(error) => TickWork::PollFailed(recipe.redactor.text(&error.to_string()).into_owned()),
    }
}

async fn fetch_items(
    context: &PollContext<'_>,
    recipe: &Recipe,
    poll: &PollTrigger,
    scheduled_at: DateTime<Utc>,
    last_success_at: Option<&str>,
) -> Result<Vec<(String, Event)>, PollError> {
    let polled_at = Utc::now();
    let template_context = json!({
        "trigger": {
            "recipe": recipe.id,
            "kind": "poll",
            "scheduled_at": crate::timestamp::timestamp(scheduled_at),
            "last_success_at": last_success_at,
        },
        "ferry": { "url": context.public_url },
    });
    let idempotency_key = format!("{}:{}", recipe.id, crate::timestamp::timestamp(scheduled_at));
    let mut request =
        crate::step::http::render::http_request(context.templates, &poll.request, &template_context, &idempotency_key)
            .map_err(PollError::Render)?;
    // Every page is fetched before any item counts: a page that fails fails
    // the poll, and no item of it is marked seen.
    let mut items = Vec::new();
    for page in 1..=poll.max_pages {
        let response = match action::http::execute(context.destinations, &request, poll.timeout).await {
            Outcome::Succeeded {
                response: Some(response),
            } => response,
            Outcome::Succeeded { response: None } => return Err(PollError::NoAnswer),
            Outcome::Failed { error, .. } => return Err(PollError::Source(error)),
        };
        let link = response.headers.get("link").and_then(Value::as_str).map(str::to_owned);
        let body = answer_json(&request, response)?;
        let next = match &poll.paginate {
            Some(pagination) if page < poll.max_pages => {
                super::pages::next_url(pagination, &request.url, link.as_deref(), &body).map_err(PollError::Page)?
            }
            _ => None,
        };
        items.extend(keyed_items(context.templates, poll, body)?);
        match next {
            Some(url) if url != request.url => {
                request.url = url;
                // The first page's URL may have been parsed when the recipe loaded.
                request.parsed_url = None;
            }
            _ => break,
        }
    }
    Ok(items
        .into_iter()
        .map(|(key, item)| {
            let event = Event {
                run_id: uuid::Uuid::now_v7().to_string(),
                recipe: recipe.id.clone(),
                recipe_version: recipe.version.clone(),
                trigger: "poll",
                // A source that echoes the credentials it was sent leaves them nowhere.
                payload: if recipe.redactor.is_empty() {
                    item
                } else {
                    recipe.redactor.value(&item)
                },
                payload_text: None,
                headers: Map::new(),
                query: Map::new(),
                received_at: polled_at,
                dedup_key: None,
                replay_of: None,
            };
            (key, event)
        })
        .collect())
}

/// The source's answer as JSON, whatever its content type says.
pub fn answer_json(request: &HttpRequest, response: HttpResponse) -> Result<Value, PollError> {
    match response.body {
        Value::String(_) | Value::Null => serde_json::from_str(&response.text).map_err(|error| PollError::NotJson {
            method: request.method.to_string(),
            url: redact_query(&request.url).to_owned(),
            reason: error.to_string(),
        }),
        body => Ok(body),
    }
}

/// The items of a polled answer, each with its key (`key` over `item`, or a hash).
pub fn keyed_items(templates: &Templates, poll: &PollTrigger, body: Value) -> Result<Vec<(String, Value)>, PollError> {
    let items = select_items(poll.items.as_ref(), body)?;
    let mut keyed = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let key = match &poll.key {
            Some(template) => {
                let key = templates
                    .render_text(template, &json!({ "item": item }))
                    .map_err(|error| PollError::Key { index, error })?;
                if key.is_empty() {
                    return Err(PollError::EmptyKey(index));
                }
                key
            }
            None => hash_of(&item),
        };
        keyed.push((key, item));
    }
    Ok(keyed)
}

/// The items of an answer. Without `items`: an array's elements, or the body as
/// one item. With it: the nodes it selects — or, when it selects a single array,
/// that array's elements. A path that selects nothing is an error unless what it
/// would pick from is there and empty (`$.features[*]` of `{"features": []}`).
fn select_items(items: Option<&ItemsPath>, body: Value) -> Result<Vec<Value>, PollError> {
    let Some(items) = items else {
        return Ok(match body {
            Value::Array(elements) => elements,
            other => vec![other],
        });
    };
    let nodes = items.path.query(&body).all();
    match nodes.as_slice() {
        [Value::Array(elements)] => Ok(elements.clone()),
        [] if parent_is_array(&items.source, &body) => Ok(Vec::new()),
        [] => Err(PollError::NoItems(items.source.clone())),
        found => Ok(found.iter().map(|node| (*node).clone()).collect()),
    }
}

/// Whether the path without its last segment (`[*]`, `.*`, `[?…]`) selects an array.
fn parent_is_array(source: &str, body: &Value) -> bool {
    let parent = if let Some(stripped) = source.strip_suffix(".*") {
        stripped
    } else if source.ends_with(']') {
        match source.rfind('[') {
            Some(start) => &source[..start],
            None => return false,
        }
    } else {
        return false;
    };
    serde_json_path::JsonPath::parse(parent)
        .map(|path| matches!(path.query(body).all().as_slice(), [Value::Array(_)]))
        .unwrap_or(false)
}

/// The identity of an item without a `key`: a hash of its JSON text.
fn hash_of(item: &Value) -> String {
    let digest = Sha256::digest(item.to_string().as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A URL for an error message without its query string (often an API key).
fn redact_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items_of(items: Option<&ItemsPath>, body: Value) -> Result<Vec<Value>, String> {
        select_items(items, body).map_err(|error| error.to_string())
    }

    fn path(source: &str) -> ItemsPath {
        ItemsPath {
            source: source.to_owned(),
            path: serde_json_path::JsonPath::parse(source).expect("valid path"),
        }
    }

    #[test]
    fn items_default_to_the_array_or_the_body() {
        assert_eq!(items_of(None, json!([1, 2])), Ok(vec![json!(1), json!(2)]));
        assert_eq!(items_of(None, json!({"a": 1})), Ok(vec![json!({"a": 1})]));
    }

    #[test]
    fn a_path_selects_nodes_or_the_elements_of_one_array() {
        let body = json!({"features": [{"id": "a"}, {"id": "b"}]});
        let expected = Ok(vec![json!({"id": "a"}), json!({"id": "b"})]);
        assert_eq!(items_of(Some(&path("$.features[*]")), body.clone()), expected);
        assert_eq!(items_of(Some(&path("$.features")), body), expected);
    }

    #[test]
    fn an_empty_list_is_no_items_but_a_missing_one_is_an_error() {
        assert_eq!(
            items_of(Some(&path("$.features[*]")), json!({"features": []})),
            Ok(Vec::new())
        );
        let error = items_of(Some(&path("$.features[*]")), json!({"title": "rate limited"})).expect_err("no features");
        assert!(error.contains("`items: $.features[*]` found nothing"), "{error}");
    }

    #[test]
    fn the_default_key_is_stable_and_differs_per_item() {
        assert_eq!(hash_of(&json!({"id": 1})), hash_of(&json!({"id": 1})));
        assert_ne!(hash_of(&json!({"id": 1})), hash_of(&json!({"id": 2})));
    }
}
