//! What a recipe's templates read of the payload, and a parse of a webhook's
//! body that builds only that.
//!
//! Building a `serde_json::Value` of a GitHub push — a map, a string and a hash
//! per field — costs several times more than checking the same text and
//! skipping what no template reads (docs/benchmarks.md). The recipe's templates are known when it loads,
//! and their paths from `payload` are plain (`payload.repository.full_name`),
//! so the parse keeps those subtrees and skips the rest. Whatever cannot be
//! known statically — `{{json payload}}`, `{{lookup payload key}}`, `{{this}}`,
//! a path through `..` — keeps the whole payload. The stored payload is the
//! body's own text, whole, whatever the templates read.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The parts of the payload that templates read: a tree of object keys, each
/// node kept whole or only in the keys below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadReads {
    whole: bool,
    keys: BTreeMap<String, PayloadReads>,
}

impl PayloadReads {
    /// Everything.
    pub fn all() -> Self {
        Self {
            whole: true,
            keys: BTreeMap::new(),
        }
    }

    /// Whether the whole payload is read.
    pub fn is_all(&self) -> bool {
        self.whole
    }

    /// Adds the subtree at `path` (object keys from the payload's top).
    pub fn read(&mut self, path: &[&str]) {
        if self.whole {
            return;
        }
        match path {
            [] => {
                self.whole = true;
                self.keys.clear();
            }
            [key, rest @ ..] => self.keys.entry((*key).to_owned()).or_default().read(rest),
        }
    }

    /// Adds everything another template reads.
    pub fn merge(&mut self, other: &PayloadReads) {
        if self.whole {
            return;
        }
        if other.whole {
            *self = Self::all();
            return;
        }
        for (key, below) in &other.keys {
            self.keys.entry(key.clone()).or_default().merge(below);
        }
    }

    /// Parses JSON text, building only what is read (a value that is not an
    /// object where keys are read is kept whole). Invalid JSON is an error, as
    /// with a whole parse.
    pub fn parse(&self, text: &[u8]) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        let value = Projection(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

/// Builds the read parts of one value.
struct Projection<'a>(&'a PayloadReads);

impl<'de> DeserializeSeed<'de> for Projection<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return serde::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Projection<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(wanted) = map.next_key_seed(Key(&self.0.keys))? {
            match wanted {
                Some((key, below)) => {
                    let value = map.next_value_seed(Projection(below))?;
                    object.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(object))
    }

    // Not an object: kept whole, as `Value` builds it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object key: the key and what is read below it when it is read at all,
/// without allocating for the keys that are skipped.
struct Key<'a>(&'a BTreeMap<String, PayloadReads>);

impl<'de, 'a> DeserializeSeed<'de> for Key<'a> {
    type Value = Option<(String, &'a PayloadReads)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'a> Visitor<'_> for Key<'a> {
    type Value = Option<(String, &'a PayloadReads)>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key).map(|below| (key.to_owned(), below)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn reads(paths: &[&[&str]]) -> PayloadReads {
        let mut reads = PayloadReads::default();
        for path in paths {
            reads.read(path);
        }
        reads
    }

    #[test]
    fn only_the_read_subtrees_are_built() {
        let text = json!({
            "repository": {"full_name": "o/r", "owner": {"login": "o"}, "size": 3},
            "pusher": {"name": "p", "email": "p@example.com"},
            "commits": [{"id": "a"}, {"id": "b"}],
            "after": "abc"
        })
        .to_string();
        let projected = reads(&[&["repository", "full_name"], &["commits"], &["missing", "x"]])
            .parse(text.as_bytes())
            .expect("parses");
        assert_eq!(
            projected,
            json!({"repository": {"full_name": "o/r"}, "commits": [{"id": "a"}, {"id": "b"}]})
        );
        assert_eq!(reads(&[]).parse(text.as_bytes()).expect("parses"), json!({}));
        let whole: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(reads(&[&[]]).parse(text.as_bytes()).expect("parses"), whole);
        assert_eq!(PayloadReads::all().parse(b"[1, 2]").expect("parses"), json!([1, 2]));
        assert_eq!(reads(&[&["a"]]).parse(b"\"text\"").expect("parses"), json!("text"));
    }

    #[test]
    fn invalid_json_is_refused_however_little_is_read() {
        for text in [
            &b"{\"a\": 1,}"[..],
            b"{\"a\": 1} trailing",
            b"{\"a\": [1, }",
            b"",
            b"{\"a\": \"\\x\"}",
        ] {
            assert!(reads(&[]).parse(text).is_err(), "{}", String::from_utf8_lossy(text));
            assert!(serde_json::from_slice::<Value>(text).is_err());
        }
    }

    #[test]
    fn escaped_keys_are_matched_by_their_value() {
        let projected = reads(&[&["a b"]]).parse(br#"{"a\u0020b": 1, "c": 2}"#).expect("parses");
        assert_eq!(projected, json!({"a b": 1}));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-c ]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
        path.iter().try_fold(value, |value, key| value.get(key.as_str()))
    }

    proptest! {
        /// Every path that is read finds what the whole parse finds.
        #[test]
        fn a_read_path_finds_what_the_whole_payload_has(
            document in json_value(),
            paths in prop::collection::vec(prop::collection::vec("[a-c]{1,2}", 0..3), 0..4),
        ) {
            let text = document.to_string();
            let mut wanted = PayloadReads::default();
            for path in &paths {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                wanted.read(&path);
            }
            let projected = wanted.parse(text.as_bytes()).expect("valid JSON parses");
            for path in &paths {
                prop_assert_eq!(at(&projected, path), at(&document, path), "{:?} in {}", path, text);
            }
        }
    }
}
