//! docs/recipes.md says what Ferry does: its `# file:` recipes load, and each
//! example of its helper table renders to what the table says.

use std::path::Path;

use ferry::recipe::{Environment, load_folder};
use ferry::template::{Template, Templates, helper_names};
use serde_json::{Value, json};

fn guide() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md")).expect("docs/recipes.md")
}

/// The fenced blocks of a language, as text.
fn blocks<'a>(text: &'a str, language: &str) -> Vec<&'a str> {
    let fence = format!("```{language}\n");
    text.split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect()
}

#[test]
fn the_guides_recipes_load() {
    let text = guide();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut written = 0;
    for block in blocks(&text, "yaml") {
        if let Some(name) = block.lines().next().and_then(|line| line.strip_prefix("# file: ")) {
            std::fs::write(dir.path().join(name.trim()), block).expect("write recipe");
            written += 1;
        }
    }
    assert!(written >= 5, "the guide's recipes were found: {written}");
    let set = load_folder(dir.path(), &Environment::default()).expect("load");
    let problems: Vec<String> = set.problems().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(set.len(), written);
}

#[test]
fn every_helper_example_renders_as_documented() {
    let text = guide();
    let (_, after) = text
        .split_once("Each example renders over this payload:")
        .expect("the helper section");
    let payload: Value = serde_json::from_str(blocks(after, "json")[0]).expect("the sample payload");
    let context = json!({"payload": payload});
    let (_, table) = after
        .split_once("| helper | example | gives |")
        .expect("the helper table");
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim()
                .trim_matches('|')
                .replace("\\|", "\u{1}")
                .split(" | ")
                .map(|cell| cell.trim().replace('\u{1}', "|"))
                .collect()
        })
        .collect();
    let templates = Templates::new();
    let mut documented = Vec::new();
    for row in &rows {
        let [helper, example, gives] = row.as_slice() else {
            panic!("a row of three cells: {row:?}");
        };
        let helper = helper.trim_matches('`');
        documented.push(helper.to_owned());
        let example = example
            .strip_prefix('`')
            .and_then(|cell| cell.strip_suffix('`'))
            .expect("a code example");
        let template = Template::compile(example).unwrap_or_else(|error| panic!("{example}: {error}"));
        let rendered = templates
            .render_text(&template, &context)
            .unwrap_or_else(|error| panic!("{example}: {error}"));
        let checked_text = |expected: &str| assert_eq!(rendered, expected, "{example}");
        match gives.as_str() {
            "the current time, RFC 3339" => {
                chrono::DateTime::parse_from_rfc3339(&rendered).unwrap_or_else(|error| panic!("{rendered}: {error}"));
            }
            "a new UUIDv7" => {
                let id = uuid::Uuid::parse_str(&rendered).expect("a UUID");
                assert_eq!(id.get_version_num(), 7, "{rendered}");
            }
            code => checked_text(
                code.strip_prefix('`')
                    .and_then(|cell| cell.strip_suffix('`'))
                    .expect("code"),
            ),
        }
    }
    for helper in helper_names() {
        assert!(
            documented.iter().any(|name| name == helper),
            "`{helper}` is not in the guide's table"
        );
    }
}
