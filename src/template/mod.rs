//! Templates: one handlebars registry with HTML escaping off, templates compiled
//! once at load, and rendering of whole JSON trees.
//!
//! JSON bodies are never built by rendering JSON *text*: a body is a
//! [`ValueTemplate`] tree whose string leaves are rendered one by one into a
//! `serde_json::Value`, so a quote or newline in a payload can never break the
//! JSON that is sent. A leaf that is exactly one expression (`"{{expr}}"`) keeps
//! the JSON type of its value.

mod check;
mod helpers;
mod truthy;

use std::fmt;

use handlebars::{Context, Handlebars, RenderContext, Renderable};
use serde_json::Value;

pub use check::{ROOTS, TemplateProblem, check, did_you_mean};
pub use helpers::helper_names;
pub use truthy::{is_truthy_text, is_truthy_value};

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template does not parse: {0}")]
    Syntax(String),
    #[error("{0}")]
    Render(String),
}

/// The shared handlebars registry with Ferry's helpers.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut registry = Handlebars::new();
        // Payloads are JSON and URLs, not HTML: escaping would corrupt them.
        registry.register_escape_fn(handlebars::no_escape);
        // At run time a missing field renders empty (or null as a whole leaf).
        registry.set_strict_mode(false);
        helpers::register(&mut registry);
        Self { registry }
    }

    /// Renders a template to text.
    pub fn render_text(&self, template: &Template, context: &Value) -> Result<String, TemplateError> {
        if !template.source.contains("{{") {
            // Plain text (a fixed URL or header) is itself; handlebars would copy
            // the whole context to say so.
            return Ok(template.source.clone());
        }
        match template.lookup(context) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(Value::Null) => Ok(String::new()),
            // Numbers, objects and arrays print the way handlebars prints them.
            _ => self.render_compiled(&template.compiled, context),
        }
    }

    /// Renders a template to a JSON value: a whole-leaf expression keeps its type,
    /// anything else becomes a string.
    pub fn render_value(&self, template: &Template, context: &Value) -> Result<Value, TemplateError> {
        if let Some(value) = template.lookup(context) {
            return Ok(value.clone());
        }
        match &template.whole_leaf {
            Some(as_json) => {
                let text = self.render_compiled(as_json, context)?;
                serde_json::from_str(&text).map_err(|error| {
                    TemplateError::Render(format!("`{}` did not give a JSON value: {error}", template.source))
                })
            }
            None => self.render_text(template, context).map(Value::String),
        }
    }

    /// Renders every string leaf of a tree.
    pub fn render_tree(&self, tree: &ValueTemplate, context: &Value) -> Result<Value, TemplateError> {
        Ok(match tree {
            ValueTemplate::Literal(value) => value.clone(),
            ValueTemplate::Text(template) => self.render_value(template, context)?,
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_tree(item, context))
                    .collect::<Result<_, _>>()?,
            ),
            ValueTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), self.render_tree(value, context)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
        })
    }

    /// Evaluates a `when` condition with the spec's truthiness rules.
    pub fn is_true(&self, condition: &Template, context: &Value) -> Result<bool, TemplateError> {
        if condition.whole_leaf.is_some() {
            Ok(is_truthy_value(&self.render_value(condition, context)?))
        } else {
            Ok(is_truthy_text(&self.render_text(condition, context)?))
        }
    }

    fn render_compiled(&self, compiled: &handlebars::Template, context: &Value) -> Result<String, TemplateError> {
        let context = Context::wraps(context).map_err(|error| TemplateError::Render(error.to_string()))?;
        let mut render_context = RenderContext::new(None);
        let mut output = CappedOutput::default();
        let rendered = compiled.render(&self.registry, &context, &mut render_context, &mut output);
        if output.exceeded {
            return Err(TemplateError::Render(format!(
                "the rendered text is larger than {} MiB",
                MAX_OUTPUT / (1024 * 1024)
            )));
        }
        rendered.map_err(|error| TemplateError::Render(render_error_message(&error)))?;
        Ok(output.text)
    }
}

/// The most text one template may render: a loop over a large payload must not
/// become a request (or a record) of any size.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Collects rendered text and stops the rendering past [`MAX_OUTPUT`].
#[derive(Default)]
struct CappedOutput {
    text: String,
    exceeded: bool,
}

impl handlebars::Output for CappedOutput {
    fn write(&mut self, segment: &str) -> Result<(), std::io::Error> {
        if self.text.len() + segment.len() > MAX_OUTPUT {
            self.exceeded = true;
            return Err(std::io::Error::other("template output over the limit"));
        }
        self.text.push_str(segment);
        Ok(())
    }
}

fn render_error_message(error: &handlebars::RenderError) -> String {
    match error.reason() {
        handlebars::RenderErrorReason::NestedError(inner) => inner.to_string(),
        reason => reason.to_string(),
    }
}

/// One compiled template and its source text.
#[derive(Clone)]
pub struct Template {
    source: String,
    compiled: handlebars::Template,
    /// For `"{{expr}}"`: the same expression wrapped as `{{json (expr)}}`, whose
    /// output parses back into the typed value.
    whole_leaf: Option<handlebars::Template>,
    /// For `"{{payload.a.b}}"` (a plain path from a context root): its segments,
    /// looked up directly. The common leaf, and through handlebars a costly one
    /// with large payloads: the context is copied for each render, and a whole
    /// leaf's value is printed as JSON and parsed back.
    path: Option<Vec<String>>,
    /// Whether it calls a helper whose output changes from one render to the
    /// next (`now`, `uuid`).
    volatile: bool,
}

/// Helpers that give another value each time they are called.
const VOLATILE_HELPERS: &[&str] = &["now", "uuid"];

impl fmt::Debug for Template {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_tuple("Template").field(&self.source).finish()
    }
}

impl Template {
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        let compiled = compile(source)?;
        let whole_leaf = match whole_leaf_expression(source) {
            Some(expression) => Some(compile(&as_json_expression(expression))?),
            None => None,
        };
        let volatile = check::helpers_called(&compiled)
            .iter()
            .any(|name| VOLATILE_HELPERS.contains(&name.as_str()));
        Ok(Self {
            source: source.to_owned(),
            compiled,
            whole_leaf,
            path: whole_leaf_expression(source).and_then(plain_path),
            volatile,
        })
    }

    /// Whether rendering it twice over the same context can give two texts: it
    /// calls `now` or `uuid`.
    pub fn is_volatile(&self) -> bool {
        self.volatile
    }

    /// The value at a plain path, when the template is one and the value is
    /// there; anything else (a missing key included) renders through handlebars,
    /// so results never differ.
    fn lookup<'a>(&self, context: &'a Value) -> Option<&'a Value> {
        let path = self.path.as_ref()?;
        path.iter()
            .try_fold(context, |value, segment| value.get(segment.as_str()))
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

fn compile(source: &str) -> Result<handlebars::Template, TemplateError> {
    handlebars::Template::compile(source).map_err(|error| TemplateError::Syntax(syntax_message(source, &error)))
}

/// handlebars' grammar error lists every rule it expected; the usual causes are
/// easier to name from the source.
fn syntax_message(source: &str, error: &handlebars::TemplateError) -> String {
    let reason = error.reason().to_string();
    if !reason.starts_with("invalid handlebars syntax") {
        return reason;
    }
    if source.matches("{{#").count() > source.matches("{{/").count() {
        return "a block `{{#…}}` is not closed with its `{{/…}}`".to_owned();
    }
    if source.matches("{{").count() > source.matches("}}").count() {
        return "a `{{` is not closed with `}}`".to_owned();
    }
    "invalid handlebars syntax: check the `{{…}}` expressions (string literals need double quotes)".to_owned()
}

/// `Some(expr)` when `source` is exactly one plain expression `{{expr}}` (not a
/// block, comment, partial or raw-HTML form) with nothing around it.
fn whole_leaf_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    let inner = inner.strip_prefix('~').unwrap_or(inner);
    let inner = inner.strip_suffix('~').unwrap_or(inner).trim();
    let first = inner.chars().next()?;
    if matches!(first, '#' | '/' | '!' | '>' | '^' | '{' | '&') || inner == "else" || inner.starts_with("else ") {
        return None;
    }
    Some(inner)
}

/// `payload.a.b-c` → `["payload", "a", "b-c"]`: identifiers joined by dots, from
/// a context root (so never a helper call, `this`, `@root` or `../`).
fn plain_path(expression: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = expression.split('.').map(str::to_owned).collect();
    let plain = |segment: &String| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == '-')
    };
    (ROOTS.contains(&segments[0].as_str()) && segments.iter().all(plain)).then_some(segments)
}

/// `payload.a` → `{{json payload.a}}`; `len payload.a` → `{{json (len payload.a)}}`;
/// `now` (a helper without parameters) → `{{json (now)}}`.
fn as_json_expression(expression: &str) -> String {
    let is_helper_call = expression.contains(char::is_whitespace) || helpers::is_helper(expression);
    if is_helper_call {
        format!("{{{{json ({expression})}}}}")
    } else {
        format!("{{{{json {expression}}}}}")
    }
}

/// A JSON tree whose string leaves are templates.
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<ValueTemplate>),
    Object(Vec<(String, ValueTemplate)>),
}

impl ValueTemplate {
    /// Compiles every string leaf; the error names the JSON path of the leaf.
    pub fn compile(tree: &Value) -> Result<Self, TemplateError> {
        compile_tree(tree, "$")
    }

    /// Every template leaf with its JSON path (`$.a[0].b`).
    pub fn templates(&self) -> Vec<(String, &Template)> {
        let mut found = Vec::new();
        collect_templates(self, "$".to_owned(), &mut found);
        found
    }
}

fn collect_templates<'a>(tree: &'a ValueTemplate, path: String, found: &mut Vec<(String, &'a Template)>) {
    match tree {
        ValueTemplate::Literal(_) => {}
        ValueTemplate::Text(template) => found.push((path, template)),
        ValueTemplate::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_templates(item, format!("{path}[{index}]"), found);
            }
        }
        ValueTemplate::Object(fields) => {
            for (key, value) in fields {
                collect_templates(value, format!("{path}.{key}"), found);
            }
        }
    }
}

fn compile_tree(tree: &Value, path: &str) -> Result<ValueTemplate, TemplateError> {
    Ok(match tree {
        Value::String(text) if text.contains("{{") => {
            ValueTemplate::Text(Template::compile(text).map_err(|error| match error {
                TemplateError::Syntax(reason) => TemplateError::Syntax(format!("at {path}: {reason}")),
                other => other,
            })?)
        }
        Value::Array(items) => ValueTemplate::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| compile_tree(item, &format!("{path}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => ValueTemplate::Object(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), compile_tree(value, &format!("{path}.{key}"))?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        literal => ValueTemplate::Literal(literal.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_that_call_now_or_uuid_are_volatile() {
        for source in [
            "{{now}}",
            "id-{{uuid}}",
            "{{format_time (now) \"%Y\"}}",
            "{{#if payload.a}}{{uuid}}{{/if}}",
        ] {
            assert!(Template::compile(source).expect(source).is_volatile(), "{source}");
        }
        for source in ["plain", "{{payload.now}}", "{{upper payload.uuid}}", "{{steps.a.body}}"] {
            assert!(!Template::compile(source).expect(source).is_volatile(), "{source}");
        }
    }

    #[test]
    fn a_loop_cannot_render_past_the_output_limit() {
        let templates = Templates::new();
        let template = Template::compile("{{#each payload.items}}{{@root.payload.big}}{{/each}}").expect("compiles");
        let context = serde_json::json!({"payload": {"items": vec![0; 100], "big": "x".repeat(100_000)}});
        let error = templates.render_text(&template, &context).expect_err("10 MB");
        assert_eq!(error.to_string(), "the rendered text is larger than 4 MiB");
        let context = serde_json::json!({"payload": {"items": vec![0; 10], "big": "x".repeat(100_000)}});
        assert_eq!(
            templates.render_text(&template, &context).map(|text| text.len()).ok(),
            Some(1_000_000)
        );
    }
    use serde_json::json;

    fn render(source: &str, context: Value) -> Value {
        let templates = Templates::new();
        templates
            .render_value(&Template::compile(source).expect("compiles"), &context)
            .expect("renders")
    }

    #[test]
    fn plain_paths_looked_up_directly_render_as_handlebars_renders_them() {
        let context = json!({
            "payload": {"n": 3, "f": 1.5, "ok": true, "list": [1, "two"], "obj": {"a": "b"}, "none": null,
                        "name": "Ada \"quoted\"", "x-dash": "dashed", "nested": {"deep": {"er": [true]}}},
            "headers": {"x-github-delivery": "abc-123"},
        });
        let templates = Templates::new();
        for source in [
            "{{payload}}",
            "{{payload.n}}",
            "{{payload.f}}",
            "{{payload.ok}}",
            "{{payload.list}}",
            "{{payload.obj}}",
            "{{payload.none}}",
            "{{payload.name}}",
            "{{payload.x-dash}}",
            "{{payload.nested.deep.er}}",
            "{{headers.x-github-delivery}}",
            "{{payload.missing}}",
            "{{payload.name.missing}}",
        ] {
            let template = Template::compile(source).expect("compiles");
            let slow = Template {
                path: None,
                ..template.clone()
            };
            assert_eq!(
                templates.render_value(&template, &context).expect("fast"),
                templates.render_value(&slow, &context).expect("slow"),
                "value of {source}"
            );
            assert_eq!(
                templates.render_text(&template, &context).expect("fast"),
                templates.render_text(&slow, &context).expect("slow"),
                "text of {source}"
            );
        }
        let plain = Template::compile("https://example.com/a b\\c").expect("compiles");
        assert_eq!(
            templates.render_text(&plain, &context).expect("text"),
            "https://example.com/a b\\c"
        );
        assert_eq!(
            templates
                .render_compiled(&plain.compiled, &context)
                .expect("handlebars"),
            "https://example.com/a b\\c"
        );
        // Helpers, `this` and anything not rooted in the context go through handlebars.
        for source in [
            "{{now}}",
            "{{uuid}}",
            "{{this.payload}}",
            "{{len payload.list}}",
            "a {{payload.n}}",
        ] {
            assert!(Template::compile(source).expect("compiles").path.is_none(), "{source}");
        }
    }

    #[test]
    fn whole_leaf_keeps_json_type() {
        let context = json!({"payload": {"n": 3, "ok": true, "list": [1, 2], "obj": {"a": "b"}, "none": null}});
        assert_eq!(render("{{payload.n}}", context.clone()), json!(3));
        assert_eq!(render("{{payload.ok}}", context.clone()), json!(true));
        assert_eq!(render("{{payload.list}}", context.clone()), json!([1, 2]));
        assert_eq!(render("{{payload.obj}}", context.clone()), json!({"a": "b"}));
        assert_eq!(render("{{payload.none}}", context.clone()), json!(null));
        assert_eq!(render("{{len payload.list}}", context.clone()), json!(2));
        assert_eq!(render("{{payload.missing}}", context), json!(null));
    }

    #[test]
    fn text_with_surroundings_is_a_string_and_missing_renders_empty() {
        let context = json!({"payload": {"n": 3, "name": "Ada"}});
        assert_eq!(render("n={{payload.n}}", context.clone()), json!("n=3"));
        assert_eq!(
            render("Hi {{payload.name}}{{payload.missing}}!", context),
            json!("Hi Ada!")
        );
    }

    #[test]
    fn no_html_escaping_and_quotes_stay_valid_json() {
        let context = json!({"payload": {"text": "a \"quoted\" <b>&</b>\nline"}});
        let tree = ValueTemplate::compile(&json!({"t": "say: {{payload.text}}", "raw": "{{payload.text}}"}))
            .expect("compiles");
        let rendered = Templates::new().render_tree(&tree, &context).expect("renders");
        assert_eq!(
            rendered,
            json!({"t": "say: a \"quoted\" <b>&</b>\nline", "raw": "a \"quoted\" <b>&</b>\nline"})
        );
    }

    #[test]
    fn blocks_are_not_whole_leaf() {
        assert!(whole_leaf_expression("{{#if x}}a{{/if}}").is_none());
        assert!(whole_leaf_expression("{{a}} {{b}}").is_none());
        assert_eq!(whole_leaf_expression("{{ payload.a }}"), Some("payload.a"));
    }

    #[test]
    fn common_syntax_errors_get_a_plain_message() {
        let unclosed = Template::compile("{{#if payload.x}}yes").expect_err("unclosed block");
        assert_eq!(
            unclosed.to_string(),
            "template does not parse: a block `{{#…}}` is not closed with its `{{/…}}`"
        );
        let open = Template::compile("hi {{payload.x").expect_err("unclosed braces");
        assert_eq!(
            open.to_string(),
            "template does not parse: a `{{` is not closed with `}}`"
        );
    }

    #[test]
    fn syntax_error_names_the_json_path() {
        let error = ValueTemplate::compile(&json!({"a": [{"b": "{{#if x}}"}]})).expect_err("must fail");
        assert!(error.to_string().contains("$.a[0].b"), "{error}");
    }
}
