//! Helpers over lists, positional as the other helpers are: `any`, `find`,
//! `filter` (by a field's value), `pluck`, `first`, `last`, `sum`, `sort_by`,
//! `unique`. A field is a key or a dotted path (`user.login`); fields compare
//! as `eq` does (a number equals a numeric string). A missing list (`null`) is
//! an empty one: a field absent from this event is not an error.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::arguments::{arg, compare, text_arg};

/// The list helpers' names. Without parameters, each is read as a field of
/// that name (`{{first}}` inside `{{#with person}}`), as it was before it was a
/// helper.
pub(super) const NAMES: &[&str] = &[
    "any", "find", "filter", "pluck", "first", "last", "sum", "sort_by", "unique",
];

/// The list in parameter 1: an array, or empty for `null`.
fn list<'a>(name: &str, args: &[&'a Value]) -> Result<&'a [Value], String> {
    match arg(args, 0) {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(&[]),
        other => Err(format!(
            "parameter 1 of `{name}` must be a list, not {}",
            crate::json::kind_of(other)
        )),
    }
}

/// The value at a dotted `path` of `item` (`null` when absent).
fn field<'a>(item: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(item, |value, key| match value {
            Value::Object(fields) => fields.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|index| items.get(index)),
            _ => None,
        })
        .unwrap_or(&Value::Null)
}

fn equal(left: &Value, right: &Value) -> bool {
    compare(left, right) == Some(Ordering::Equal)
}

/// The elements whose `field` equals parameter 3.
fn matching<'a>(name: &str, args: &[&'a Value]) -> Result<impl Iterator<Item = &'a Value>, String> {
    let items = list(name, args)?;
    let path = text_arg(name, args, 1)?;
    let wanted = arg(args, 2);
    Ok(items.iter().filter(move |item| equal(field(item, &path), wanted)))
}

/// `any LIST "field" VALUE`: whether an element's field equals the value.
pub(super) fn any(args: &[&Value]) -> Result<Value, String> {
    Ok(Value::Bool(matching("any", args)?.next().is_some()))
}

/// `find LIST "field" VALUE`: the first element whose field equals the value,
/// else `null`.
pub(super) fn find(args: &[&Value]) -> Result<Value, String> {
    Ok(matching("find", args)?.next().cloned().unwrap_or(Value::Null))
}

/// `filter LIST "field" VALUE`: the elements whose field equals the value.
pub(super) fn filter(args: &[&Value]) -> Result<Value, String> {
    Ok(Value::Array(matching("filter", args)?.cloned().collect()))
}

/// `pluck LIST "field"`: each element's field, in order (`null` where absent).
pub(super) fn pluck(args: &[&Value]) -> Result<Value, String> {
    let items = list("pluck", args)?;
    let path = text_arg("pluck", args, 1)?;
    Ok(Value::Array(
        items.iter().map(|item| field(item, &path).clone()).collect(),
    ))
}

/// `first LIST`: the first element, else `null`.
pub(super) fn first(args: &[&Value]) -> Result<Value, String> {
    Ok(list("first", args)?.first().cloned().unwrap_or(Value::Null))
}

/// `last LIST`: the last element, else `null`.
pub(super) fn last(args: &[&Value]) -> Result<Value, String> {
    Ok(list("last", args)?.last().cloned().unwrap_or(Value::Null))
}

/// `sum LIST` or `sum LIST "field"`: the total of numbers (or numeric text);
/// a whole number when every term is one.
pub(super) fn sum(args: &[&Value]) -> Result<Value, String> {
    let items = list("sum", args)?;
    let path = match arg(args, 1) {
        Value::Null => None,
        _ => Some(text_arg("sum", args, 1)?),
    };
    let mut whole: Option<i64> = Some(0);
    let mut total = 0.0_f64;
    for (index, item) in items.iter().enumerate() {
        let term = path.as_deref().map_or(item, |path| field(item, path));
        let number = match term {
            Value::Number(number) => number.clone(),
            Value::String(text) => text
                .trim()
                .parse::<Number>()
                .ok()
                .filter(|number| number.as_f64().is_some_and(f64::is_finite))
                .ok_or_else(|| format!("element {index} of `sum` is not a number: {term}"))?,
            Value::Null => continue,
            other => return Err(format!("element {index} of `sum` is not a number: {other}")),
        };
        whole = whole.zip(number.as_i64()).and_then(|(sum, term)| sum.checked_add(term));
        total += number.as_f64().unwrap_or(0.0);
    }
    Ok(match whole {
        Some(whole) => Value::from(whole),
        None => Number::from_f64(total).map_or(Value::Null, Value::Number),
    })
}

/// `sort_by LIST "field"`: the elements ordered by their field (numbers as
/// numbers, text as text; a stable sort: equal or unordered fields keep their
/// order; elements without the field last).
pub(super) fn sort_by(args: &[&Value]) -> Result<Value, String> {
    let items = list("sort_by", args)?;
    let path = text_arg("sort_by", args, 1)?;
    let mut sorted: Vec<Value> = items.to_vec();
    sorted.sort_by(|left, right| {
        let (left, right) = (field(left, &path), field(right, &path));
        match (left.is_null(), right.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare(left, right).unwrap_or(Ordering::Equal),
        }
    });
    Ok(Value::Array(sorted))
}

/// `unique LIST`: the elements without repeats, each where it first appears.
pub(super) fn unique(args: &[&Value]) -> Result<Value, String> {
    let items = list("unique", args)?;
    let mut kept: Vec<Value> = Vec::new();
    for item in items {
        if !kept.contains(item) {
            kept.push(item.clone());
        }
    }
    Ok(Value::Array(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(helper: fn(&[&Value]) -> Result<Value, String>, args: &[Value]) -> Result<Value, String> {
        let args: Vec<&Value> = args.iter().collect();
        helper(&args)
    }

    fn labels() -> Value {
        json!([{"name": "docs", "id": 3}, {"name": "bug", "id": "1"}, {"name": "ui"}])
    }

    #[test]
    fn finding_by_a_field_compares_as_eq_does() {
        assert_eq!(call(any, &[labels(), json!("name"), json!("bug")]), Ok(json!(true)));
        assert_eq!(
            call(any, &[labels(), json!("name"), json!("feature")]),
            Ok(json!(false))
        );
        assert_eq!(
            call(find, &[labels(), json!("id"), json!(1)]),
            Ok(json!({"name": "bug", "id": "1"}))
        );
        assert_eq!(call(find, &[labels(), json!("id"), json!(9)]), Ok(Value::Null));
        assert_eq!(
            call(filter, &[labels(), json!("name"), json!("ui")]),
            Ok(json!([{"name": "ui"}]))
        );
        let people = json!([{"user": {"login": "ada"}}, {"user": {"login": "bob"}}]);
        assert_eq!(call(any, &[people, json!("user.login"), json!("bob")]), Ok(json!(true)));
    }

    #[test]
    fn plucking_ordering_and_totals() {
        assert_eq!(
            call(pluck, &[labels(), json!("name")]),
            Ok(json!(["docs", "bug", "ui"]))
        );
        assert_eq!(call(pluck, &[labels(), json!("id")]), Ok(json!([3, "1", null])));
        assert_eq!(call(first, &[labels()]), Ok(json!({"name": "docs", "id": 3})));
        assert_eq!(call(last, &[json!([])]), Ok(Value::Null));
        assert_eq!(call(sum, &[json!([1, "2", 3])]), Ok(json!(6)));
        assert_eq!(call(sum, &[json!([{"p": 1.5}, {"p": 2}]), json!("p")]), Ok(json!(3.5)));
        assert_eq!(
            call(sort_by, &[json!([{"n": 10}, {"n": "9"}, {}, {"n": 1}]), json!("n")]),
            Ok(json!([{"n": 1}, {"n": "9"}, {"n": 10}, {}]))
        );
        assert_eq!(call(unique, &[json!(["a", "b", "a", 1, 1])]), Ok(json!(["a", "b", 1])));
    }

    #[test]
    fn a_missing_list_is_empty_and_a_scalar_is_an_error() {
        assert_eq!(call(any, &[Value::Null, json!("name"), json!("bug")]), Ok(json!(false)));
        assert_eq!(call(pluck, &[Value::Null, json!("name")]), Ok(json!([])));
        assert_eq!(call(sum, &[Value::Null]), Ok(json!(0)));
        let error = call(first, &[json!("text")]).expect_err("not a list");
        assert_eq!(error, "parameter 1 of `first` must be a list, not text");
        assert!(
            call(sum, &[json!(["x"])])
                .expect_err("not a number")
                .contains("element 0")
        );
    }
}
