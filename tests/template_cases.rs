//! Ferry's templates against the handlebars.js spec cases: every case that
//! handlebars-rust renders like handlebars.js renders the same in Ferry, with HTML
//! escaping off (so the `escape-html-*` cases expect the raw text).

use ferry::template::{Template, Templates};
use serde_json::Value;

#[test]
fn handlebars_spec_cases_render_as_handlebars_js_does_without_html_escaping() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/handlebars_cases.json");
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("cases file")).expect("JSON");
    let templates = Templates::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases["cases"].as_array().expect("cases") {
        // The six cases handlebars-rust renders differently (mustache-style
        // sections, `.` as a helper argument) are documented in docs/decisions.md.
        if case["handlebars_rust_6_4_4"] != "same" {
            continue;
        }
        let id = case["id"].as_str().unwrap_or_default();
        let source = case["template"].as_str().expect("template");
        // handlebars.js escaped its output for HTML; Ferry does not escape.
        let expected = html_unescape(case["expected"].as_str().expect("expected"));
        let rendered = Template::compile(source)
            .map_err(|error| error.to_string())
            .and_then(|template| {
                templates
                    .render_text(&template, &case["data"])
                    .map_err(|error| error.to_string())
            });
        checked += 1;
        if rendered.as_deref() != Ok(expected.as_str()) {
            failures.push(format!("{id}: {source:?} gave {rendered:?}, expected {expected:?}"));
        }
    }
    assert_eq!(checked, 46);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Undoes handlebars.js' HTML escaping (`&amp;` last, so `&amp;lt;` gives `&lt;`).
fn html_unescape(text: &str) -> String {
    [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#x27;", "'"),
        ("&#x60;", "`"),
        ("&#x3D;", "="),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(text.to_owned(), |text, (escaped, raw)| text.replace(escaped, raw))
}
