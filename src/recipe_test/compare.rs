//! Comparing what a step sent with what a test expects, down to the JSON path
//! that differs.

use serde_json::Value;

/// One difference, at a path like `json.items[0].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    /// The expected value as JSON text.
    pub expected: String,
    /// The actual value as JSON text, or `(missing)`.
    pub actual: String,
}

impl Difference {
    pub fn new(path: impl Into<String>, expected: &Value, actual: Option<&Value>) -> Self {
        Self {
            path: path.into(),
            expected: expected.to_string(),
            actual: actual.map_or_else(|| "(missing)".to_owned(), Value::to_string),
        }
    }
}

/// Whether `actual` holds `expected`: objects may have more keys, arrays must
/// have the same length with each element holding the expected one, numbers
/// compare by value (`3` and `3.0`), everything else exactly.
pub fn subset(expected: &Value, actual: &Value, path: &str, differences: &mut Vec<Difference>) {
    match (expected, actual) {
        (Value::Object(wanted), Value::Object(found)) => {
            for (key, value) in wanted {
                let inner = format!("{path}{}", key_segment(key));
                match found.get(key) {
                    Some(actual) => subset(value, actual, &inner, differences),
                    None => differences.push(Difference::new(inner, value, None)),
                }
            }
        }
        (Value::Array(wanted), Value::Array(found)) if wanted.len() == found.len() => {
            for (index, (value, actual)) in wanted.iter().zip(found).enumerate() {
                subset(value, actual, &format!("{path}[{index}]"), differences);
            }
        }
        (Value::Number(wanted), Value::Number(found)) if wanted.as_f64() == found.as_f64() => {}
        _ if expected == actual => {}
        _ => differences.push(Difference::new(path, expected, Some(actual))),
    }
}

/// `.name`, or `["odd name"]` when the key is not a plain identifier.
fn key_segment(key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!(".{key}")
    } else {
        format!("[{}]", Value::String(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn differences(expected: Value, actual: Value) -> Vec<Difference> {
        let mut found = Vec::new();
        subset(&expected, &actual, "json", &mut found);
        found
    }

    #[test]
    fn more_keys_in_the_actual_object_are_fine() {
        assert!(differences(json!({"a": 1}), json!({"a": 1.0, "b": 2})).is_empty());
    }

    #[test]
    fn a_difference_names_its_path() {
        let found = differences(
            json!({"blocks": [{"text": "hi"}, {"n": 1}]}),
            json!({"blocks": [{"text": "ho"}, {}]}),
        );
        assert_eq!(
            found,
            [
                Difference::new("json.blocks[0].text", &json!("hi"), Some(&json!("ho"))),
                Difference::new("json.blocks[1].n", &json!(1), None),
            ]
        );
    }

    #[test]
    fn arrays_must_have_the_same_length_and_types_must_match() {
        assert_eq!(differences(json!([1]), json!([1, 2])).len(), 1);
        assert_eq!(differences(json!({"n": "1"}), json!({"n": 1})).len(), 1);
    }

    #[test]
    fn odd_keys_are_quoted() {
        let found = differences(json!({"a b": 1}), json!({}));
        assert_eq!(found[0].path, "json[\"a b\"]");
    }
}
