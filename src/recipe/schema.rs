//! The JSON Schema of a recipe file, generated from the serde types users
//! write (`config.rs`): `ferry schema` prints it for editors, which then
//! complete keys and mark wrong ones as the recipe is typed. `ferry check` stays
//! the authority: a schema cannot say that a template compiles or a cron fires.

use serde_json::Value;

use super::config::RecipeFile;

/// The schema, as JSON. Draft 7: the draft editors' YAML language servers
/// support fully.
pub fn recipe_schema() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RecipeFile>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".to_owned(), Value::from("Ferry recipe"));
        object.insert(
            "description".to_owned(),
            Value::from("A Ferry recipe file: a trigger, an optional condition, and steps. See docs/recipes.md."),
        );
    }
    schema
}
