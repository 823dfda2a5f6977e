//! Reading a helper's parameters: by position, as text, as numbers, and
//! compared as `eq` compares them. Shared by the helpers and the list helpers.

use std::cmp::Ordering;

use serde_json::Value;

/// Parameter `index` (from 0), or null when not given.
pub(super) fn arg<'a>(args: &[&'a Value], index: usize) -> &'a Value {
    args.get(index).copied().unwrap_or(&Value::Null)
}

/// The text of a scalar: strings as they are, numbers and booleans as JSON, null empty.
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Null => Some(String::new()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

pub(super) fn text_arg(name: &str, args: &[&Value], index: usize) -> Result<String, String> {
    text_of(arg(args, index)).ok_or_else(|| {
        format!(
            "parameter {} of `{name}` must be text, not an object or array",
            index + 1
        )
    })
}

/// A number, or a string that holds one.
pub(super) fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok().filter(|number| number.is_finite()),
        _ => None,
    }
}

/// Orders two values: numerically when both are numbers or numeric strings, as
/// text when both are strings, by JSON equality otherwise (`None` = unordered).
pub(super) fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    if let (Some(left), Some(right)) = (as_number(left), as_number(right)) {
        return left.partial_cmp(&right);
    }
    match (left, right) {
        (Value::String(left), Value::String(right)) => Some(left.cmp(right)),
        (left, right) if left == right => Some(Ordering::Equal),
        _ => None,
    }
}
