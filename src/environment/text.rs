//! The strings of a recipe file, each typed by how `${NAME}` fills it, and the
//! scope in which reading a recipe fills them.
//!
//! A config type says by its fields' types which strings are templates
//! ([`TemplateText`], [`TemplateTree`]) and which are used as written
//! ([`PlainText`]); a plain `Spanned<String>` (an id) is never filled. Each
//! string fills itself as serde reads it, so a new config type (a step kind's)
//! is filled without a walk that lists its fields a second time. serde gives a
//! `Deserialize` impl no context, so the environment is set for the reading
//! thread while [`filling`] runs; outside it, strings are left as written.

use std::cell::RefCell;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::{Environment, Field, interpolate};
use crate::redact::Secret;

/// A string compiled as a template afterwards: a `{{` in a value taken from the
/// environment is escaped, so the value stays literal text.
#[derive(Debug, Clone)]
pub struct TemplateText(pub Spanned<String>);

/// A string used as it is (a path, a method, a duration).
#[derive(Debug, Clone)]
pub struct PlainText(pub Spanned<String>);

/// A YAML tree whose every string leaf is a template (a `json:` body).
#[derive(Debug, Clone)]
pub struct TemplateTree(pub Spanned<Value>);

/// What reading a recipe took from the environment, and what it could not fill.
#[derive(Debug, Default)]
pub struct Filled {
    /// The values taken from the environment that are secrets.
    pub secrets: Vec<Secret>,
    /// Every reference that could not be filled, with its place.
    pub problems: Vec<(Location, String)>,
}

struct Scope {
    environment: Environment,
    filled: Filled,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `read` (a serde read of recipe types) with `${NAME}` filled from
/// `environment`; returns its result and what filling found.
pub fn filling<T>(environment: &Environment, read: impl FnOnce() -> T) -> (T, Filled) {
    /// Ends the scope also when `read` unwinds, so the thread's next read is
    /// not filled from a stale environment.
    struct Ended(Option<Scope>);
    impl Drop for Ended {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPE.with(|scope| *scope.borrow_mut() = previous);
        }
    }
    let previous = SCOPE.with(|scope| {
        scope.borrow_mut().replace(Scope {
            environment: environment.clone(),
            filled: Filled::default(),
        })
    });
    let ended = Ended(previous);
    let value = read();
    let filled = SCOPE
        .with(|scope| scope.borrow_mut().take())
        .map(|scope| scope.filled)
        .unwrap_or_default();
    drop(ended);
    (value, filled)
}

fn fill(text: &mut String, location: Location, field: Field) {
    SCOPE.with(|scope| {
        let mut scope = scope.borrow_mut();
        let Some(Scope { environment, filled }) = scope.as_mut() else {
            return;
        };
        match interpolate(text, environment, &mut filled.secrets, field) {
            Ok(value) => *text = value,
            Err(problem) => filled.problems.push((location, problem)),
        }
    });
}

fn fill_tree(value: &mut Value, location: Location) {
    match value {
        Value::String(text) => fill(text, location, Field::Template),
        Value::Array(items) => items.iter_mut().for_each(|item| fill_tree(item, location)),
        Value::Object(fields) => fields.values_mut().for_each(|field| fill_tree(field, location)),
        _ => {}
    }
}

impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = Spanned::<String>::deserialize(deserializer)?;
        fill(&mut text.value, text.referenced, Field::Template);
        Ok(Self(text))
    }
}

impl<'de> Deserialize<'de> for PlainText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = Spanned::<String>::deserialize(deserializer)?;
        fill(&mut text.value, text.referenced, Field::Plain);
        Ok(Self(text))
    }
}

impl<'de> Deserialize<'de> for TemplateTree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut tree = Spanned::<Value>::deserialize(deserializer)?;
        fill_tree(&mut tree.value, tree.referenced);
        Ok(Self(tree))
    }
}

impl Deref for TemplateText {
    type Target = Spanned<String>;
    fn deref(&self) -> &Spanned<String> {
        &self.0
    }
}

impl Deref for PlainText {
    type Target = Spanned<String>;
    fn deref(&self) -> &Spanned<String> {
        &self.0
    }
}

impl Deref for TemplateTree {
    type Target = Spanned<Value>;
    fn deref(&self) -> &Spanned<Value> {
        &self.0
    }
}

/// In the schema, each is what it holds: editors see a string or any value.
macro_rules! schema_as {
    ($type:ty, $as:ty) => {
        impl JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$as>::schema_name()
            }
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                <$as>::json_schema(generator)
            }
        }
    };
}

schema_as!(TemplateText, String);
schema_as!(PlainText, String);
schema_as!(TemplateTree, Value);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Sample {
        template: TemplateText,
        plain: PlainText,
        tree: TemplateTree,
        id: Spanned<String>,
    }

    const TEXT: &str = "template: '${TOKEN}'\nplain: '${TOKEN}'\ntree: {a: ['${TOKEN}']}\nid: '${TOKEN}'\n";

    #[test]
    fn each_string_fills_by_its_type_and_ids_stay_as_written() {
        let environment = Environment::from_pairs([("TOKEN", "abc{{x}}def-123456")]);
        let (sample, filled) = filling(&environment, || serde_saphyr::from_str::<Sample>(TEXT));
        let sample = sample.expect("reads");
        assert_eq!(sample.template.value, "abc\\{{x}}def-123456");
        assert_eq!(sample.plain.value, "abc{{x}}def-123456");
        assert_eq!(sample.tree.value, serde_json::json!({"a": ["abc\\{{x}}def-123456"]}));
        assert_eq!(sample.id.value, "${TOKEN}");
        assert_eq!(filled.secrets.len(), 1);
        assert!(filled.problems.is_empty());
    }

    #[test]
    fn every_missing_variable_is_a_problem_at_its_place_and_outside_a_scope_nothing_fills() {
        let (sample, filled) = filling(&Environment::default(), || serde_saphyr::from_str::<Sample>(TEXT));
        assert!(sample.is_ok());
        let lines: Vec<u64> = filled.problems.iter().map(|(location, _)| location.line()).collect();
        assert_eq!(lines, [1, 2, 3]);
        let outside = serde_saphyr::from_str::<Sample>(TEXT).expect("reads");
        assert_eq!(outside.template.value, "${TOKEN}");
    }
}
