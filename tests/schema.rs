//! `ferry schema`: the JSON Schema editors use for recipe files. Every example
//! recipe in `recipes/` passes it, and it refuses what `ferry check` refuses for
//! its shape (an unknown key, a wrong type), so it is not an empty promise.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The schema as the binary prints it.
fn printed_schema() -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("schema")
        .output()
        .expect("run ferry schema");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the schema is JSON")
}

/// A compiled validator of the printed schema.
fn validator() -> (boon::Schemas, boon::SchemaIndex) {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("ferry-recipe.schema.json", printed_schema())
        .expect("the schema is a resource");
    let index = compiler
        .compile("ferry-recipe.schema.json", &mut schemas)
        .expect("the schema compiles");
    (schemas, index)
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

#[test]
fn every_example_recipe_passes_the_schema() {
    let (schemas, index) = validator();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).expect("recipes/") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if !name.ends_with(".yaml") || name.ends_with(".test.yaml") {
            continue;
        }
        let recipe = yaml(&std::fs::read_to_string(&path).expect("read a recipe"));
        if let Err(error) = schemas.validate(&recipe, index) {
            panic!("{name} does not pass the schema: {error}");
        }
        checked += 1;
    }
    assert!(checked >= 5, "the examples were found: {checked}");
}

#[test]
fn the_schema_refuses_unknown_keys_and_wrong_types() {
    let (schemas, index) = validator();
    let good = yaml(
        "trigger: {webhook: {path: hook}}\nsteps:\n  - http: {method: POST, url: 'http://x/y', json: {a: '{{payload.a}}'}}\n",
    );
    assert!(schemas.validate(&good, index).is_ok(), "a plain recipe passes");
    for (bad, why) in [
        (
            "trigger: {webhook: {}}\nsteps:\n  - http: {url: 'http://x', methd: POST}\n",
            "a misspelt key",
        ),
        (
            "trigger: {webhook: {}}\nconcurrency: many\nsteps: [{log: hi}]\n",
            "a word for a number",
        ),
        (
            "trigger: {webhook: {}, schedule: {every: 1m}}\nsteps: [{log: hi}]\n",
            "two triggers",
        ),
        ("steps: [{log: hi}]\n", "no trigger"),
        ("trigger: {cron: {}}\nsteps: [{log: hi}]\n", "an unknown trigger"),
    ] {
        assert!(schemas.validate(&yaml(bad), index).is_err(), "{why} passed the schema");
    }
}
