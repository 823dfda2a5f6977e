//! Every YAML block in README.md and docs/*.md parses, every inline flow mapping
//! (`verify: {scheme: …}`) is YAML as written, and each complete recipe among the
//! blocks loads as `ferry check` loads it: a user copies these.

use std::path::{Path, PathBuf};

use ferry::recipe::{Environment, load_source};
use serde_json::Value;

fn documents() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, text)
        })
        .collect()
}

/// The fenced YAML blocks of a Markdown text, each with the line it starts on.
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        match &mut open {
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(open.take()),
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {
                let fence = line.trim_start();
                if fence == "```yaml" || fence == "```yml" {
                    open = Some((index + 2, String::new()));
                }
            }
        }
    }
    assert!(open.is_none(), "a YAML block is not closed");
    blocks
}

/// Inline code spans that are a key and a flow mapping or sequence, such as
/// `` `verify: {scheme: github, secret: "${GITHUB_WEBHOOK_SECRET}"}` ``.
fn inline_flow_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            span.split_once(": ").is_some_and(|(key, value)| {
                !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && (value.starts_with('{') || value.starts_with('['))
            })
        })
        .map(str::to_owned)
        .collect()
}

/// Every `${NAME}` of a block set to a value of its kind, as a user's environment would.
fn environment_for(block: &str) -> Environment {
    let mut pairs = Vec::new();
    for reference in block.split("${").skip(1) {
        let name: String = reference
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let value = if name.ends_with("_URL") {
            format!("http://127.0.0.1:9/{}", name.to_ascii_lowercase())
        } else {
            // Base64, so that a Standard Webhooks secret decodes too.
            "c2VjcmV0LXZhbHVlLWZvci1kb2Nz".to_owned()
        };
        pairs.push((name, value));
    }
    Environment::from_pairs(pairs)
}

#[test]
fn every_yaml_block_and_inline_mapping_in_the_docs_parses_and_each_recipe_loads() {
    let mut blocks_seen = 0;
    let mut recipes_loaded = 0;
    let mut problems = Vec::new();
    for (path, text) in documents() {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        for (line, block) in yaml_blocks(&text) {
            blocks_seen += 1;
            let parsed: Value = match serde_saphyr::from_str(&block) {
                Ok(parsed) => parsed,
                Err(error) => {
                    problems.push(format!("{name}:{line}: not YAML: {error}"));
                    continue;
                }
            };
            if parsed.get("trigger").is_some() && parsed.get("steps").is_some() {
                let file = block
                    .lines()
                    .next()
                    .and_then(|first| first.strip_prefix("# file: "))
                    .map_or_else(|| format!("block-at-{line}.yaml"), |file| file.trim().to_owned());
                match load_source(Path::new(&file), &block, &environment_for(&block)) {
                    Ok(_) => recipes_loaded += 1,
                    Err(diagnostics) => {
                        for diagnostic in diagnostics {
                            problems.push(format!("{name}:{line}: the recipe does not load: {diagnostic}"));
                        }
                    }
                }
            }
        }
        for span in inline_flow_spans(&text) {
            if let Err(error) = serde_saphyr::from_str::<Value>(&span) {
                problems.push(format!("{name}: `{span}` is not YAML: {error}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(blocks_seen >= 12, "the docs' YAML blocks were found: {blocks_seen}");
    assert!(recipes_loaded >= 6, "the docs' recipes were found: {recipes_loaded}");
}
