//! A loopback API for poll triggers: answers every request with what the test
//! set last, and counts the requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

#[derive(Clone)]
struct SourceState {
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
}

/// The source a poll recipe fetches.
pub struct Source {
    pub url: String,
    state: SourceState,
}

impl Source {
    /// Serves `200` with `body` (JSON text) until told otherwise.
    pub async fn start(body: &serde_json::Value) -> Self {
        let state = SourceState {
            answer: Arc::new(Mutex::new((200, body.to_string()))),
            requests: Arc::new(Mutex::new(Vec::new())),
            count: Arc::new(AtomicUsize::new(0)),
        };
        let router = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind source");
        let url = format!("http://{}", listener.local_addr().expect("source address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, state }
    }

    /// What the next polls get: a status and a body as text (JSON or not).
    pub fn answer(&self, status: u16, body: &str) {
        *self.state.answer.lock().expect("source lock") = (status, body.to_owned());
    }

    pub fn answer_json(&self, body: &serde_json::Value) {
        self.answer(200, &body.to_string());
    }

    /// Requests answered so far.
    pub fn polls(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    /// The path and query of every request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().expect("source lock").clone()
    }
}

async fn answer(State(state): State<SourceState>, request: Request) -> impl IntoResponse {
    let target = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    state.requests.lock().expect("source lock").push(target);
    let (status, body) = state.answer.lock().expect("source lock").clone();
    // Counted after the answer is chosen: a test that saw the count move knows
    // the poll got what was set before.
    state.count.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
}
