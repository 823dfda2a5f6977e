//! The JSON Schema of a recipe file, generated from the serde types users
//! write (`config.rs`): `ferry schema` prints it for editors, which then
//! complete keys and mark wrong ones as the recipe is typed. `ferry check` stays
//! the authority: a schema cannot say that a template compiles or a cron fires.
//!
//! The same schema is the first check of every file read ([`check`]): keys,
//! kinds of value and ranges come from the types, so a new config type (a step
//! kind's) is checked without a table that lists its keys a second time.

use std::sync::LazyLock;

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::config::RecipeFile;
use super::tree::{Key, Node, Scalar};
use crate::template::did_you_mean;

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

/// A problem the schema finds in a file: where, and what to say.
pub(super) struct Problem {
    pub location: Location,
    pub message: String,
}

/// Every place where the file's tree does not fit the schema: unknown keys
/// (with the closest known one), missing keys, values of the wrong kind,
/// numbers out of range. What the schema cannot say is left to validation.
pub(super) fn check(tree: &Spanned<Node>) -> Vec<Problem> {
    static SCHEMA: LazyLock<Value> = LazyLock::new(recipe_schema);
    let mut checking = Checking {
        definitions: &SCHEMA["definitions"],
        problems: Vec::new(),
    };
    checking.walk(tree, &SCHEMA, "", "the recipe");
    checking.problems
}

struct Checking<'a> {
    definitions: &'a Value,
    problems: Vec<Problem>,
}

impl<'a> Checking<'a> {
    fn report(&mut self, location: Location, message: String) {
        self.problems.push(Problem { location, message });
    }

    /// The schema a reference or a one-part `allOf` stands for.
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        loop {
            if let Some(name) = schema["$ref"]
                .as_str()
                .and_then(|name| name.strip_prefix("#/definitions/"))
            {
                schema = &self.definitions[name];
            } else if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
                schema = only;
            } else {
                return schema;
            }
        }
    }

    /// `path` names the value in messages about its type (`steps[0].retry`);
    /// `what` names a map in messages about its keys (`a step`, `` `retry` ``).
    fn walk(&mut self, node: &Spanned<Node>, schema: &'a Value, path: &str, what: &str) {
        let schema = self.resolve(schema);
        if let Some(branches) = schema["anyOf"].as_array() {
            // An `Option<T>`: the value, or nothing.
            if matches!(node.value, Node::Scalar(Scalar::Null))
                && branches.iter().any(|branch| branch["type"] == "null")
            {
                return;
            }
            // Several forms (`delay: 10m` or `delay: {until: …}`): the one of
            // the value's kind, else the first.
            let kind = match &node.value {
                Node::Map(_) => "object",
                Node::Seq(_) => "array",
                Node::Scalar(_) => "string",
            };
            let forms: Vec<&Value> = branches.iter().filter(|branch| branch["type"] != "null").collect();
            let chosen = forms
                .iter()
                .find(|branch| self.resolve(branch)["type"] == kind)
                .or(forms.first());
            if let Some(branch) = chosen {
                self.walk(node, branch, path, what);
            }
            return;
        }
        if let Some(branches) = schema["oneOf"].as_array() {
            if let Some(tag) = tag_of(branches) {
                self.tagged(node, branches, tag, path, what);
                return;
            }
            if branches.iter().all(|branch| branch["properties"].is_object()) {
                self.one_of(node, branches, path, what);
                return;
            }
        }
        if !self.fits(node, schema, path) {
            return;
        }
        match &node.value {
            Node::Map(entries) => self.map(node, entries, schema, path, what),
            Node::Seq(items) => {
                // The steps of a recipe and of a branch are each "a step".
                let of_steps = schema["items"]["$ref"]
                    .as_str()
                    .is_some_and(|reference| reference.ends_with("/StepConfig"));
                let key = path.rsplit('.').next().unwrap_or(path);
                let item_what = if of_steps {
                    "a step".to_owned()
                } else {
                    format!("an item of `{key}`")
                };
                for (index, item) in items.iter().enumerate() {
                    self.walk(item, &schema["items"], &format!("{path}[{index}]"), &item_what);
                }
            }
            Node::Scalar(_) => {}
        }
    }

    /// Whether the value is of a kind the schema allows, and in its range.
    fn fits(&mut self, node: &Spanned<Node>, schema: &Value, path: &str) -> bool {
        let allowed: Vec<&str> = match &schema["type"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        let found = match &node.value {
            Node::Map(_) => "object",
            Node::Seq(_) => "array",
            Node::Scalar(Scalar::Null) => "null",
            Node::Scalar(Scalar::Bool) => "boolean",
            Node::Scalar(Scalar::Integer(_)) => "integer",
            Node::Scalar(Scalar::Float) => "number",
            Node::Scalar(Scalar::Text(_)) => "string",
        };
        // YAML types `30` and `yes` as a number and a flag; where text is
        // wanted, any scalar is its text.
        let scalar = !matches!(node.value, Node::Map(_) | Node::Seq(_));
        let fits = allowed.contains(&found)
            || (scalar && allowed.contains(&"string"))
            || (found == "integer" && allowed.contains(&"number"));
        if !fits {
            let expected: Vec<&str> = allowed
                .iter()
                .filter(|kind| **kind != "null")
                .map(|kind| kind_name(kind))
                .collect();
            let subject = subject(path);
            self.report(
                node.referenced,
                format!("{subject} must be {}, not {}", expected.join(" or "), kind_name(found)),
            );
            return false;
        }
        if let Node::Scalar(Scalar::Integer(number)) = node.value {
            let maximum = match schema["format"].as_str() {
                Some("uint8") => Some(i128::from(u8::MAX)),
                Some("uint16") => Some(i128::from(u16::MAX)),
                Some("uint32") => Some(i128::from(u32::MAX)),
                Some("uint64") => Some(i128::from(u64::MAX)),
                _ => None,
            };
            let minimum = schema["minimum"].as_i64().map(i128::from);
            let below = minimum.is_some_and(|minimum| number < minimum);
            let above = maximum.is_some_and(|maximum| number > maximum);
            if below || above {
                let range = format!("{} to {}", minimum.unwrap_or(i128::MIN), maximum.unwrap_or(i128::MAX));
                self.report(node.referenced, format!("`{path}` is {number}; it must be {range}"));
                return false;
            }
        }
        true
    }

    fn map(
        &mut self,
        node: &Spanned<Node>,
        entries: &[(Spanned<Key>, Spanned<Node>)],
        schema: &'a Value,
        path: &str,
        what: &str,
    ) {
        let properties = schema["properties"].as_object();
        let known: Vec<&str> = properties
            .into_iter()
            .flat_map(|properties| properties.keys())
            .map(String::as_str)
            .collect();
        for (key, value) in entries {
            let name = key.value.0.as_str();
            if let Some(property) = properties.and_then(|properties| properties.get(name)) {
                self.walk(value, property, &inside(path, name), &format!("`{name}`"));
            } else if schema["additionalProperties"].is_object() {
                self.walk(
                    value,
                    &schema["additionalProperties"],
                    &inside(path, name),
                    &format!("`{name}`"),
                );
            } else if schema["additionalProperties"] == false {
                self.unknown(key, what, &known);
            }
        }
        for required in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            // A misspelt required key is one problem, reported as unknown.
            let misspelt = entries
                .iter()
                .any(|(key, _)| did_you_mean(&key.value.0, known.iter().copied()) == Some(required));
            if !misspelt && !entries.iter().any(|(key, _)| key.value.0 == required) {
                self.report(node.referenced, format!("{what} needs `{required}`"));
            }
        }
    }

    /// A map that holds exactly one of several keys (`trigger: {webhook: …}`).
    fn one_of(&mut self, node: &Spanned<Node>, branches: &'a [Value], path: &str, what: &str) {
        let Node::Map(entries) = &node.value else {
            let subject = subject(path);
            self.report(node.referenced, format!("{subject} must be a map"));
            return;
        };
        let properties: Vec<(&str, &'a Value)> = branches
            .iter()
            .filter_map(|branch| branch["properties"].as_object())
            .flatten()
            .map(|(key, schema)| (key.as_str(), schema))
            .collect();
        let known: Vec<&str> = properties.iter().map(|(key, _)| *key).collect();
        let mut chosen = Vec::new();
        for (key, value) in entries {
            let name = key.value.0.as_str();
            match properties.iter().find(|(known, _)| *known == name) {
                Some((_, schema)) => {
                    chosen.push(name);
                    let inside = inside(path, name);
                    self.walk(value, schema, &inside, &format!("`{name}`"));
                }
                None => self.unknown(key, what, &known),
            }
        }
        let listed = || {
            known
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match chosen.as_slice() {
            [] => self.report(node.referenced, format!("{what} needs one of {}", listed())),
            [_] => {}
            [first, second, ..] => self.report(
                node.referenced,
                format!("{what} has both `{first}` and `{second}`; give one of {}", listed()),
            ),
        }
    }

    /// A map whose `tag` key (`scheme`) chooses which keys it takes
    /// (`verify: {scheme: hmac, header: …}`).
    fn tagged(&mut self, node: &Spanned<Node>, branches: &'a [Value], tag: &str, path: &str, what: &str) {
        let Node::Map(entries) = &node.value else {
            let subject = subject(path);
            self.report(node.referenced, format!("{subject} must be a map"));
            return;
        };
        let name = what.trim_matches('`');
        let choices: Vec<&str> = branches
            .iter()
            .filter_map(|branch| branch["properties"][tag]["const"].as_str())
            .collect();
        let Some((_, chosen)) = entries.iter().find(|(key, _)| key.value.0 == tag) else {
            self.report(
                node.referenced,
                format!("{name} needs `{tag}`: one of {}", choices.join(", ")),
            );
            return;
        };
        let Node::Scalar(Scalar::Text(value)) = &chosen.value else {
            self.report(
                chosen.referenced,
                format!("{name} `{tag}` must be one of {}", choices.join(", ")),
            );
            return;
        };
        let value = value.trim();
        let Some(branch) = branches
            .iter()
            .find(|branch| branch["properties"][tag]["const"] == value)
        else {
            let hint = did_you_mean(value, choices.iter().copied())
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            self.report(
                chosen.referenced,
                format!(
                    "{name} `{tag}: {value}` is not known; expected one of {}{hint}",
                    choices.join(", ")
                ),
            );
            return;
        };
        let properties = branch["properties"].as_object();
        let takes: Vec<&str> = properties
            .into_iter()
            .flat_map(|properties| properties.keys())
            .map(String::as_str)
            .filter(|key| *key != tag)
            .collect();
        let anywhere: Vec<&str> = branches
            .iter()
            .filter_map(|branch| branch["properties"].as_object())
            .flat_map(|properties| properties.keys())
            .map(String::as_str)
            .fold(Vec::new(), |mut keys, key| {
                if !keys.contains(&key) {
                    keys.push(key);
                }
                keys
            });
        for (key, entry) in entries {
            let key_name = key.value.0.as_str();
            if key_name == tag {
                continue;
            }
            if let Some(schema) = properties.and_then(|properties| properties.get(key_name)) {
                let inside = inside(path, key_name);
                self.walk(entry, schema, &inside, &format!("`{key_name}`"));
            } else if anywhere.contains(&key_name) {
                self.report(
                    entry.referenced,
                    format!(
                        "{name} `{key_name}` does not apply to `{tag}: {value}`; it takes {}",
                        takes.join(", ")
                    ),
                );
            } else {
                self.unknown(key, what, &anywhere);
            }
        }
        for required in branch["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !entries.iter().any(|(key, _)| key.value.0 == required) {
                self.report(
                    node.referenced,
                    format!("{name} with `{tag}: {value}` needs `{required}`"),
                );
            }
        }
    }

    fn unknown(&mut self, key: &Spanned<Key>, what: &str, known: &[&str]) {
        let name = key.value.0.as_str();
        let hint = did_you_mean(name, known.iter().copied())
            .map(|close| format!("; did you mean `{close}`?"))
            .unwrap_or_default();
        self.report(
            key.referenced,
            format!(
                "unknown key `{name}` in {what}; expected one of {}{hint}",
                known.join(", ")
            ),
        );
    }
}

/// How messages name the value at `path`.
fn subject(path: &str) -> String {
    if path.is_empty() {
        "the file".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// The path of `key` in the map at `path`.
fn inside(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The key every branch fixes to a constant (`scheme`), when there is one: the
/// branches of an internally tagged enum.
fn tag_of(branches: &[Value]) -> Option<&str> {
    let first = branches.first()?["properties"].as_object()?;
    first.iter().map(|(key, _)| key.as_str()).find(|key| {
        branches
            .iter()
            .all(|branch| branch["properties"][*key]["const"].is_string())
    })
}

/// How a message names a JSON Schema type.
fn kind_name(kind: &str) -> &str {
    match kind {
        "object" => "a map",
        "array" => "a list",
        "null" => "empty",
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "text",
        other => other,
    }
}
