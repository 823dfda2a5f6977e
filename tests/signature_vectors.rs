//! `tests/data/signature_vectors.json` (a copy of `shared/data/`): every published
//! and derived vector of the five providers gives its `expected_valid`, through
//! a recipe's `verify:` as users write it, with the vector's own clock.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferry::recipe::{Environment, Trigger, load_source};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The recipe a user would write for the vector's scheme and secret.
fn recipe_for(vector: &Value) -> String {
    let scheme = match vector["scheme"].as_str().expect("scheme") {
        "standard-webhooks" => "standard",
        other => other,
    };
    let secret = serde_json::to_string(vector["secret"].as_str().expect("secret")).expect("quoted");
    let tolerance = vector["tolerance_s"]
        .as_u64()
        .map(|seconds| format!(", tolerance: {seconds}s"))
        .unwrap_or_default();
    format!(
        "trigger:\n  webhook:\n    verify: {{scheme: {scheme}, secret: {secret}{tolerance}}}\nsteps: [{{log: ok}}]\n"
    )
}

#[test]
fn every_vector_verifies_as_expected() {
    let text = std::fs::read_to_string(data("signature_vectors.json")).expect("vectors");
    let document: Value = serde_json::from_str(&text).expect("JSON");
    let vectors = document["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 40, "only {} vectors", vectors.len());
    let mut wrong = Vec::new();
    for vector in vectors {
        let id = vector["id"].as_str().expect("id");
        let source = recipe_for(vector);
        let recipe = load_source(Path::new("vector.yaml"), &source, &Environment::default())
            .unwrap_or_else(|problems| panic!("{id}: {source}\n{problems:?}"));
        let Trigger::Webhook {
            verify: Some(verifier), ..
        } = &recipe.trigger
        else {
            panic!("{id}: no verifier");
        };
        let body: Vec<u8> = match vector["body_file"].as_str() {
            Some(file) => {
                let name = Path::new(file).file_name().expect("a file name");
                std::fs::read(data(&name.to_string_lossy())).expect("body file")
            }
            None => vector["body"].as_str().expect("body").as_bytes().to_vec(),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in vector["headers"].as_object().expect("headers") {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value.as_str().expect("header value")).expect("header value"),
            );
        }
        let now = vector["now"].as_i64().unwrap_or_else(|| chrono::Utc::now().timestamp());
        let valid = verifier.check(&headers, &body, now).is_ok();
        if Some(valid) != vector["expected_valid"].as_bool() {
            wrong.push(format!(
                "{id} ({}): expected {}, got {valid}",
                vector["description"], vector["expected_valid"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} vectors disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
