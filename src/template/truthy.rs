//! Truthiness for `when`, as the recipe spec defines it.

use serde_json::Value;

/// The value of a whole-expression condition.
pub fn is_truthy_value(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::String(text) => is_truthy_text(text),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}

/// The rendered text of a condition, trimmed.
pub fn is_truthy_text(text: &str) -> bool {
    !matches!(text.trim(), "" | "false" | "0" | "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_false_values() {
        for value in [
            json!(false),
            json!(null),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
            json!("false"),
            json!("0"),
            json!("null"),
        ] {
            assert!(!is_truthy_value(&value), "{value} should be false");
        }
        for value in [json!(true), json!(1), json!("yes"), json!([0]), json!({"a": 1})] {
            assert!(is_truthy_value(&value), "{value} should be true");
        }
        assert!(!is_truthy_text("  false \n"));
        assert!(is_truthy_text("main"));
    }
}
