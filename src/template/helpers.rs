//! Ferry's helpers. Every helper is a function from parameter values to one JSON
//! value, so the same helper works as `{{helper x}}`, as a subexpression
//! `(helper x)`, and as a whole-leaf expression that keeps its type.
//!
//! handlebars' own comparison helpers are replaced: the recipe spec compares a
//! number and a numeric string as numbers (form bodies and queries are strings),
//! and `and`/`or`/`not` use Ferry's truthiness.

use std::cmp::Ordering;
use std::fmt::Write as _;

use base64::Engine as _;
use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson};
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use super::arguments::{arg, as_number, compare, text_arg, text_of};
use super::budget;
use super::lists;
use super::truthy::is_truthy_value;

/// A helper's body: parameter values in, one value out, or a message for the run.
type HelperFn = fn(&[&Value]) -> Result<Value, String>;

/// The helper names a recipe may use besides the block helpers.
pub const HELPERS: &[(&str, HelperFn)] = &[
    ("json", json),
    ("eq", |args| {
        compare_args("eq", args).map(|order| Value::Bool(order == Some(Ordering::Equal)))
    }),
    ("ne", |args| {
        compare_args("ne", args).map(|order| Value::Bool(order != Some(Ordering::Equal)))
    }),
    ("lt", |args| {
        compare_args("lt", args).map(|order| Value::Bool(order == Some(Ordering::Less)))
    }),
    ("lte", |args| {
        compare_args("lte", args).map(|order| Value::Bool(matches!(order, Some(Ordering::Less | Ordering::Equal))))
    }),
    ("gt", |args| {
        compare_args("gt", args).map(|order| Value::Bool(order == Some(Ordering::Greater)))
    }),
    ("gte", |args| {
        compare_args("gte", args).map(|order| Value::Bool(matches!(order, Some(Ordering::Greater | Ordering::Equal))))
    }),
    ("and", |args| {
        Ok(Value::Bool(
            !args.is_empty() && args.iter().all(|arg| is_truthy_value(arg)),
        ))
    }),
    ("or", |args| {
        Ok(Value::Bool(args.iter().any(|arg| is_truthy_value(arg))))
    }),
    ("not", |args| {
        Ok(Value::Bool(!args.first().is_some_and(|arg| is_truthy_value(arg))))
    }),
    ("len", len),
    ("contains", contains),
    ("matches", matches),
    ("default", default),
    ("lower", |args| map_text("lower", args, |text| text.to_lowercase())),
    ("upper", |args| map_text("upper", args, |text| text.to_uppercase())),
    ("trim", |args| map_text("trim", args, |text| text.trim().to_owned())),
    ("split", split),
    ("join", join),
    ("replace", replace),
    ("slice", slice),
    ("now", |_| {
        Ok(Value::String(crate::timestamp::timestamp(chrono::Utc::now())))
    }),
    ("format_time", format_time),
    ("url_encode", |args| {
        map_text("url_encode", args, |text| url_encode(&text))
    }),
    ("base64", |args| {
        map_text("base64", args, |text| {
            base64::engine::general_purpose::STANDARD.encode(text)
        })
    }),
    ("base64_decode", base64_decode),
    ("sha256", |args| {
        map_text("sha256", args, |text| hex(&Sha256::digest(text.as_bytes())))
    }),
    ("uuid", |_| Ok(Value::String(uuid::Uuid::now_v7().to_string()))),
    ("any", lists::any),
    ("find", lists::find),
    ("filter", lists::filter),
    ("pluck", lists::pluck),
    ("first", lists::first),
    ("last", lists::last),
    ("sum", lists::sum),
    ("sort_by", lists::sort_by),
    ("unique", lists::unique),
];

/// Block helpers of the handlebars language that recipes may use.
pub const BLOCK_HELPERS: &[&str] = &["if", "unless", "each", "with", "lookup"];

/// Every helper a recipe may call, block helpers last.
pub fn helper_names() -> impl Iterator<Item = &'static str> {
    HELPERS
        .iter()
        .map(|(name, _)| *name)
        .chain(BLOCK_HELPERS.iter().copied())
}

/// Whether `name` is a helper a recipe may call.
pub fn is_helper(name: &str) -> bool {
    HELPERS.iter().any(|(helper, _)| *helper == name) || BLOCK_HELPERS.contains(&name)
}

pub(super) fn register(registry: &mut Handlebars<'static>) {
    // handlebars' `log` would write template data around redaction; the others
    // are replaced below or not part of the recipe language.
    for name in ["log", "raw"] {
        registry.unregister_helper(name);
    }
    // handlebars' `each`, with every iteration charged to the render budget.
    registry.register_helper("each", Box::new(super::each::Each));
    for (name, function) in HELPERS {
        registry.register_helper(
            name,
            Box::new(ValueHelper {
                name,
                function: *function,
            }),
        );
    }
}

struct ValueHelper {
    name: &'static str,
    function: HelperFn,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        // `{{first}}` alone in a block over `{"first": "Alan"}` is the field, as
        // it was before `first` was a helper: the list helpers need a list.
        if helper.params().is_empty() && lists::NAMES.contains(&self.name) {
            return render.evaluate(context, self.name);
        }
        let args: Vec<&Value> = helper.params().iter().map(|param| param.value()).collect();
        // A call costs a unit, and one more per element of a list it is given
        // (the list helpers walk it); what it will allocate is paid before it
        // does: `replace` can make a megabyte of a kilobyte, twice over.
        let elements = args
            .iter()
            .filter_map(|arg| arg.as_array())
            .map(Vec::len)
            .sum::<usize>();
        budget::spend_work(1 + elements as u64)?;
        let estimated = allocation(self.name, &args);
        budget::spend_allocation(estimated.unwrap_or(0))?;
        let result = (self.function)(&args).map_err(|message| {
            RenderError::from(RenderErrorReason::Other(format!("helper `{}`: {message}", self.name)))
        })?;
        if estimated.is_none() {
            // At most a few times its arguments' size: paid once it is known.
            budget::spend_allocation(budget::size_of(&result))?;
        }
        Ok(ScopedJson::Derived(result))
    }
}

/// What the helpers that can make much more than they are given (`replace`,
/// `join`, `split`) will allocate, from their arguments, before they run; `None`
/// for the others, whose result is paid once made.
fn allocation(name: &str, args: &[&Value]) -> Option<usize> {
    let text_len = |index: usize| match arg(args, index) {
        Value::String(text) => text.len(),
        other => budget::size_of(other),
    };
    match name {
        "replace" => {
            let (Value::String(text), Value::String(from)) = (arg(args, 0), arg(args, 1)) else {
                return Some(text_len(0));
            };
            if from.is_empty() {
                return Some(text.len());
            }
            let count = text.matches(from.as_str()).count();
            Some(text.len().saturating_add(count.saturating_mul(text_len(2))))
        }
        "join" => {
            let items = arg(args, 0).as_array().map_or(0, Vec::len);
            Some(budget::size_of(arg(args, 0)).saturating_add(items.saturating_mul(text_len(1))))
        }
        "split" => {
            // Each part is a value of its own.
            let parts = match (arg(args, 0), arg(args, 1)) {
                (Value::String(text), Value::String(separator)) if !separator.is_empty() => {
                    text.matches(separator.as_str()).count() + 1
                }
                (Value::String(text), _) => text.chars().count(),
                _ => 1,
            };
            Some(text_len(0).saturating_add(parts.saturating_mul(48)))
        }
        _ => None,
    }
}

fn map_text(name: &str, args: &[&Value], map: impl Fn(String) -> String) -> Result<Value, String> {
    Ok(Value::String(map(text_arg(name, args, 0)?)))
}

fn json(args: &[&Value]) -> Result<Value, String> {
    serde_json::to_string(arg(args, 0))
        .map(Value::String)
        .map_err(|error| error.to_string())
}

fn compare_args(name: &str, args: &[&Value]) -> Result<Option<Ordering>, String> {
    if args.len() != 2 {
        return Err(format!("`{name}` compares two values, it was given {}", args.len()));
    }
    Ok(compare(args[0], args[1]))
}

fn len(args: &[&Value]) -> Result<Value, String> {
    let count = match arg(args, 0) {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(fields) => fields.len(),
        Value::Null => 0,
        other => {
            return Err(format!(
                "cannot count the length of {other}; expected text, an array or an object"
            ));
        }
    };
    Ok(Value::from(count))
}

fn contains(args: &[&Value]) -> Result<Value, String> {
    let needle = arg(args, 1);
    let found = match arg(args, 0) {
        Value::String(text) => text.contains(&text_arg("contains", args, 1)?),
        Value::Array(items) => items.iter().any(|item| compare(item, needle) == Some(Ordering::Equal)),
        Value::Object(fields) => fields.contains_key(&text_arg("contains", args, 1)?),
        _ => false,
    };
    Ok(Value::Bool(found))
}

fn matches(args: &[&Value]) -> Result<Value, String> {
    let text = text_arg("matches", args, 0)?;
    let pattern = text_arg("matches", args, 1)?;
    let regex = regex::Regex::new(&pattern).map_err(|error| format!("`{pattern}` is not a valid regex: {error}"))?;
    Ok(Value::Bool(regex.is_match(&text)))
}

fn default(args: &[&Value]) -> Result<Value, String> {
    let value = arg(args, 0);
    let empty = matches!(value, Value::Null) || value.as_str() == Some("");
    Ok(if empty { arg(args, 1).clone() } else { value.clone() })
}

fn split(args: &[&Value]) -> Result<Value, String> {
    let text = text_arg("split", args, 0)?;
    let separator = text_arg("split", args, 1)?;
    if text.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    if separator.is_empty() {
        return Ok(text.chars().map(|c| Value::String(c.to_string())).collect());
    }
    Ok(text
        .split(separator.as_str())
        .map(|part| Value::String(part.to_owned()))
        .collect())
}

fn join(args: &[&Value]) -> Result<Value, String> {
    let separator = text_arg("join", args, 1)?;
    let items = match arg(args, 0) {
        Value::Array(items) => items,
        Value::Null => return Ok(Value::String(String::new())),
        other => return Err(format!("`join` needs an array, not {other}")),
    };
    let parts = items
        .iter()
        .map(|item| text_of(item).unwrap_or_else(|| item.to_string()))
        .collect::<Vec<_>>();
    Ok(Value::String(parts.join(&separator)))
}

fn replace(args: &[&Value]) -> Result<Value, String> {
    let text = text_arg("replace", args, 0)?;
    let from = text_arg("replace", args, 1)?;
    let to = text_arg("replace", args, 2)?;
    if from.is_empty() {
        return Ok(Value::String(text));
    }
    Ok(Value::String(text.replace(&from, &to)))
}

/// `slice x start [end]`: characters of text or items of an array; negative
/// positions count from the end, out-of-range positions are clamped.
fn slice(args: &[&Value]) -> Result<Value, String> {
    let position = |index: usize, length: usize| -> Result<usize, String> {
        let value = arg(args, index);
        let number = as_number(value)
            .filter(|number| number.fract() == 0.0)
            .ok_or_else(|| format!("parameter {} of `slice` must be a whole number, not {value}", index + 1))?;
        let length = length as f64;
        let resolved = if number < 0.0 { length + number } else { number };
        Ok(resolved.clamp(0.0, length) as usize)
    };
    let bounds = |length: usize| -> Result<(usize, usize), String> {
        let start = position(1, length)?;
        let end = if args.len() > 2 { position(2, length)? } else { length };
        Ok((start, end.max(start)))
    };
    match arg(args, 0) {
        Value::Array(items) => {
            let (start, end) = bounds(items.len())?;
            Ok(Value::Array(items[start..end].to_vec()))
        }
        Value::Object(_) => Err("`slice` needs text or an array, not an object".to_owned()),
        other => {
            let text = text_of(other).unwrap_or_default();
            let chars: Vec<char> = text.chars().collect();
            let (start, end) = bounds(chars.len())?;
            Ok(Value::String(chars[start..end].iter().collect()))
        }
    }
}

/// `format_time time pattern`: `time` is RFC 3339 text or Unix seconds; `pattern`
/// is strftime, or `rfc3339`, or `unix`.
fn format_time(args: &[&Value]) -> Result<Value, String> {
    let time = match arg(args, 0) {
        Value::Number(number) => {
            let seconds = number.as_f64().ok_or("the time is not a number")?;
            chrono::DateTime::from_timestamp_millis((seconds * 1000.0) as i64)
                .ok_or_else(|| format!("{number} is out of range for a time"))?
        }
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| time.to_utc())
            .map_err(|error| format!("`{text}` is not an RFC 3339 time: {error}"))?,
        other => return Err(format!("{other} is not a time; expected RFC 3339 text or Unix seconds")),
    };
    let pattern = text_arg("format_time", args, 1)?;
    match pattern.as_str() {
        "" | "rfc3339" => return Ok(Value::String(crate::timestamp::timestamp(time))),
        "unix" => return Ok(Value::Number(Number::from(time.timestamp()))),
        _ => {}
    }
    // chrono's `to_string` panics on a bad pattern; `write!` reports it instead.
    let mut formatted = String::new();
    write!(formatted, "{}", time.format(&pattern))
        .map_err(|_| format!("`{pattern}` is not a valid strftime pattern"))?;
    Ok(Value::String(formatted))
}

fn base64_decode(args: &[&Value]) -> Result<Value, String> {
    let text = text_arg("base64_decode", args, 0)?;
    let trimmed = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(trimmed))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|error| format!("`{text}` is not valid base64: {error}"))?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not UTF-8 text".to_owned())
}

/// Percent-encodes everything but the unreserved characters of RFC 3986, so the
/// result is safe in a path segment and in a query value.
fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::template::{Template, Templates};

    fn value(source: &str, context: Value) -> Result<Value, String> {
        let template = Template::compile(source).map_err(|error| error.to_string())?;
        Templates::new()
            .render_value(&template, &context)
            .map_err(|error| error.to_string())
    }

    fn ok(source: &str, context: Value) -> Value {
        value(source, context).unwrap_or_else(|error| panic!("{source}: {error}"))
    }

    #[test]
    fn comparisons_treat_numeric_strings_as_numbers() {
        let context = json!({"query": {"n": "10"}, "n": 9, "s": "abc"});
        assert_eq!(ok("{{eq query.n 10}}", context.clone()), json!(true));
        assert_eq!(ok("{{ne query.n 10}}", context.clone()), json!(false));
        assert_eq!(
            ok("{{gt query.n n}}", context.clone()),
            json!(true),
            "10 > 9 as numbers, not text"
        );
        assert_eq!(ok("{{lte n 9}}", context.clone()), json!(true));
        assert_eq!(ok("{{lt s \"abd\"}}", context.clone()), json!(true));
        assert_eq!(ok("{{eq s \"abc\"}}", context.clone()), json!(true));
        assert_eq!(ok("{{eq missing null}}", context), json!(true));
    }

    #[test]
    fn boolean_helpers_return_booleans_with_ferry_truthiness() {
        let context = json!({"a": "x", "zero": "0", "list": []});
        assert_eq!(ok("{{and a true}}", context.clone()), json!(true));
        assert_eq!(ok("{{and a zero}}", context.clone()), json!(false));
        assert_eq!(ok("{{or list zero}}", context.clone()), json!(false));
        assert_eq!(ok("{{not list}}", context.clone()), json!(true));
        assert_eq!(ok("x{{not a}}", context), json!("xfalse"));
    }

    #[test]
    fn len_counts_characters_items_and_keys() {
        let context = json!({"s": "héllo", "list": [1, 2, 3], "obj": {"a": 1, "b": 2}});
        assert_eq!(ok("{{len s}}", context.clone()), json!(5));
        assert_eq!(ok("{{len list}}", context.clone()), json!(3));
        assert_eq!(ok("{{len obj}}", context.clone()), json!(2));
        assert_eq!(ok("{{len missing}}", context), json!(0));
    }

    #[test]
    fn text_helpers() {
        let context = json!({"s": "  Hello World  ", "csv": "a,b,c", "list": ["x", 1, true], "ref": "refs/tags/v12"});
        assert_eq!(ok("{{lower s}}", context.clone()), json!("  hello world  "));
        assert_eq!(ok("{{upper (trim s)}}", context.clone()), json!("HELLO WORLD"));
        assert_eq!(ok("{{split csv \",\"}}", context.clone()), json!(["a", "b", "c"]));
        assert_eq!(ok("{{join list \"-\"}}", context.clone()), json!("x-1-true"));
        assert_eq!(ok("{{replace csv \",\" \";\"}}", context.clone()), json!("a;b;c"));
        assert_eq!(
            ok("{{replace csv \".\" \"!\"}}", context.clone()),
            json!("a,b,c"),
            "replace is literal"
        );
        assert_eq!(ok("{{slice csv 0 3}}", context.clone()), json!("a,b"));
        assert_eq!(ok("{{slice list -2}}", context.clone()), json!([1, true]));
        assert_eq!(ok("{{contains csv \"b,c\"}}", context.clone()), json!(true));
        assert_eq!(ok("{{contains list 1}}", context.clone()), json!(true));
        assert_eq!(
            ok("{{matches ref \"^refs/tags/v\\\\d+$\"}}", context.clone()),
            json!(true)
        );
        assert_eq!(ok("{{default missing \"none\"}}", context.clone()), json!("none"));
        assert_eq!(ok("{{default csv \"none\"}}", context), json!("a,b,c"));
    }

    #[test]
    fn encoding_helpers() {
        let context = json!({"s": "a b&c/é", "b64": "aGVsbG8="});
        assert_eq!(ok("{{url_encode s}}", context.clone()), json!("a%20b%26c%2F%C3%A9"));
        assert_eq!(ok("{{base64 \"hello\"}}", context.clone()), json!("aGVsbG8="));
        assert_eq!(ok("{{base64_decode b64}}", context.clone()), json!("hello"));
        assert_eq!(
            ok("{{sha256 \"abc\"}}", context.clone()),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(ok("{{json (split \"a,b\" \",\")}}", context), json!("[\"a\",\"b\"]"));
    }

    #[test]
    fn time_and_identity_helpers() {
        let context = json!({"t": "2026-03-29T01:30:00+01:00", "unix": 1_700_000_000});
        assert_eq!(
            ok("{{format_time t \"%Y-%m-%d %H:%M\"}}", context.clone()),
            json!("2026-03-29 00:30")
        );
        assert_eq!(
            ok("{{format_time unix \"rfc3339\"}}", context.clone()),
            json!("2023-11-14T22:13:20.000Z")
        );
        assert_eq!(ok("{{format_time t \"unix\"}}", context.clone()), json!(1_774_744_200));
        let now = ok("{{now}}", context.clone());
        assert!(
            chrono::DateTime::parse_from_rfc3339(now.as_str().unwrap_or_default()).is_ok(),
            "{now}"
        );
        let id = ok("{{uuid}}", context);
        let parsed = uuid::Uuid::parse_str(id.as_str().unwrap_or_default()).expect("a uuid");
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn bad_arguments_are_run_errors_not_crashes() {
        let context = json!({"b": "%%%", "t": "yesterday"});
        for (source, needle) in [
            ("{{base64_decode b}}", "not valid base64"),
            ("{{format_time t \"%Y\"}}", "not an RFC 3339 time"),
            (
                "{{format_time \"2026-01-01T00:00:00Z\" \"%Q\"}}",
                "not a valid strftime pattern",
            ),
            ("{{matches \"x\" \"(\"}}", "not a valid regex"),
            ("{{eq 1}}", "compares two values"),
        ] {
            let error = value(source, context.clone()).expect_err(source);
            assert!(error.contains(needle), "{source}: {error}");
        }
    }
}
