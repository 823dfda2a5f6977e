//! Templates: one handlebars registry with HTML escaping off, templates compiled
//! once at load, and rendering of whole JSON trees.
//!
//! JSON bodies are never built by rendering JSON *text*: a body is a
//! [`ValueTemplate`] tree whose string leaves are rendered one by one into a
//! `serde_json::Value`, so a quote or newline in a payload can never break the
//! JSON that is sent. A leaf that is exactly one expression (`"{{expr}}"`) keeps
//! the JSON type of its value.

mod arguments;
pub mod budget;
mod check;
mod each;
mod helpers;
mod lists;
mod reads;
mod truthy;

use std::fmt;

use handlebars::{Context, Handlebars, RenderContext, Renderable};
use serde_json::Value;

pub use budget::{OverBudget, RenderBudget};
pub use check::{EarlierSteps, ROOTS, TemplateProblem, check, did_you_mean, payload_reads};
pub use helpers::helper_names;
pub use reads::PayloadReads;
pub use truthy::{is_truthy_text, is_truthy_value};

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template does not parse: {0}")]
    Syntax(String),
    #[error("{0}")]
    Render(String),
    #[error("{0}")]
    OverBudget(OverBudget),
}

/// The shared handlebars registry with Ferry's helpers, and the budget of each
/// render.
pub struct Templates {
    registry: Handlebars<'static>,
    budget: RenderBudget,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        Self::with_budget(RenderBudget::default())
    }

    /// Templates whose every render (a step's request, a condition, a line) is
    /// held to `budget`.
    pub fn with_budget(budget: RenderBudget) -> Self {
        let mut registry = Handlebars::new();
        // Payloads are JSON and URLs, not HTML: escaping would corrupt them.
        registry.register_escape_fn(handlebars::no_escape);
        // At run time a missing field renders empty (or null as a whole leaf).
        registry.set_strict_mode(false);
        helpers::register(&mut registry);
        Self { registry, budget }
    }

    /// The most bytes of step results one run keeps for its templates.
    pub fn results_limit(&self) -> usize {
        self.budget.results
    }

    /// Runs `render` as one render: everything it renders shares one budget (a
    /// step's leaves are one request). The render methods below are each one
    /// render when called outside this.
    pub fn budgeted<T>(&self, render: impl FnOnce() -> Result<T, TemplateError>) -> Result<T, TemplateError> {
        budget::within(self.budget, || {
            let result = render();
            // A helper's error or a cut output says less than the budget that caused it.
            match (result, budget::over()) {
                (Err(_), Some(over)) => Err(TemplateError::OverBudget(over)),
                (result, _) => result,
            }
        })
    }

    /// Renders a template to text.
    pub fn render_text(&self, template: &Template, context: &Value) -> Result<String, TemplateError> {
        self.budgeted(|| {
            if !template.source.contains("{{") {
                // Plain text (a fixed URL or header) is itself; handlebars would
                // copy the whole context to say so.
                spend_output(template.source.len())?;
                return Ok(template.source.clone());
            }
            match template.lookup(context) {
                Some(Value::String(text)) => {
                    spend_output(text.len())?;
                    Ok(text.clone())
                }
                Some(Value::Null) => Ok(String::new()),
                // Numbers, objects and arrays print the way handlebars prints them.
                _ => self.render_compiled(&template.compiled, &template.source, context),
            }
        })
    }

    /// Renders a template to a JSON value: a whole-leaf expression keeps its type,
    /// anything else becomes a string.
    pub fn render_value(&self, template: &Template, context: &Value) -> Result<Value, TemplateError> {
        self.budgeted(|| self.render_value_within(template, context))
    }

    fn render_value_within(&self, template: &Template, context: &Value) -> Result<Value, TemplateError> {
        if let Some(value) = template.lookup(context) {
            spend_output(budget::size_of(value))?;
            return Ok(value.clone());
        }
        match &template.whole_leaf {
            Some(as_json) => {
                let text = self.render_compiled(as_json, &template.source, context)?;
                serde_json::from_str(&text).map_err(|error| {
                    TemplateError::Render(format!("`{}` did not give a JSON value: {error}", template.source))
                })
            }
            None => self.render_text(template, context).map(Value::String),
        }
    }

    /// Renders every string leaf of a tree.
    pub fn render_tree(&self, tree: &ValueTemplate, context: &Value) -> Result<Value, TemplateError> {
        self.budgeted(|| self.render_tree_within(tree, context))
    }

    fn render_tree_within(&self, tree: &ValueTemplate, context: &Value) -> Result<Value, TemplateError> {
        Ok(match tree {
            ValueTemplate::Literal(value) => {
                spend_output(budget::size_of(value))?;
                value.clone()
            }
            ValueTemplate::Text(template) => self.render_value_within(template, context)?,
            ValueTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_tree_within(item, context))
                    .collect::<Result<_, _>>()?,
            ),
            ValueTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), self.render_tree_within(value, context)?)))
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

    /// `source` is the template's text, for messages that quote a path of it.
    fn render_compiled(
        &self,
        compiled: &handlebars::Template,
        source: &str,
        context: &Value,
    ) -> Result<String, TemplateError> {
        let context = Context::wraps(context).map_err(|error| TemplateError::Render(error.to_string()))?;
        let mut render_context = RenderContext::new(None);
        let mut output = BudgetedOutput::default();
        let rendered = compiled.render(&self.registry, &context, &mut render_context, &mut output);
        if let Some(over) = budget::over() {
            return Err(TemplateError::OverBudget(over));
        }
        rendered.map_err(|error| TemplateError::Render(render_error_message(&error, source, context.data())))?;
        Ok(output.text)
    }
}

fn spend_output(bytes: usize) -> Result<(), TemplateError> {
    budget::spend_output(bytes).map_err(TemplateError::OverBudget)
}

/// Collects rendered text, each piece paid from the render budget before it is
/// kept: a loop over a large payload must not become a request (or a record) of
/// any size.
#[derive(Default)]
struct BudgetedOutput {
    text: String,
}

impl handlebars::Output for BudgetedOutput {
    fn write(&mut self, segment: &str) -> Result<(), std::io::Error> {
        budget::spend_output(segment.len()).map_err(|over| std::io::Error::other(over.to_string()))?;
        self.text.push_str(segment);
        Ok(())
    }
}

fn render_error_message(error: &handlebars::RenderError, source: &str, context: &Value) -> String {
    match error.reason() {
        handlebars::RenderErrorReason::NestedError(inner) => inner.to_string(),
        handlebars::RenderErrorReason::InvalidJsonIndex(segment) => through_a_list(source, segment, context),
        reason => reason.to_string(),
    }
}

/// A path that goes through a list by a name (`payload.labels.name`): which
/// path, and the two ways to say what was meant.
fn through_a_list(source: &str, segment: &str, context: &Value) -> String {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']' | '@');
    let suffix = format!(".{segment}");
    let found = source.split(|c: char| !is_path_char(c)).find_map(|token| {
        let at = token.find(&suffix)?;
        let list = &token[..at];
        let segments: Vec<&str> = list.split('.').map(|part| part.trim_matches(['[', ']'])).collect();
        let value = segments.iter().try_fold(context, |value, part| match value {
            Value::Object(fields) => fields.get(*part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|index| items.get(index)),
            _ => None,
        })?;
        value.is_array().then(|| list.to_owned())
    });
    match found {
        Some(list) => format!(
            "`{list}` is a list, so `{list}.{segment}` names nothing: take one element (`{list}.[0].{segment}`) or every element's `{segment}` (`pluck {list} \"{segment}\"`)"
        ),
        None => format!(
            "a path goes through a list by the name `{segment}`: take one element (`LIST.[0].{segment}`) or every element's `{segment}` (`pluck LIST \"{segment}\"`)"
        ),
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
    /// Whether it has a block.
    blocks: bool,
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
            blocks: nesting(source).0 > 0,
        })
    }

    /// Whether it is one `{{…}}` expression, rendering to a JSON value of any
    /// type (a list, a number) rather than to text.
    pub fn is_whole_value(&self) -> bool {
        self.whole_leaf.is_some()
    }

    /// Whether it has a block (`{{#each}}`, `{{#if}}`, …): a loop can take a
    /// render's whole work budget.
    pub fn has_blocks(&self) -> bool {
        self.blocks
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

/// The longest template a recipe may hold, and the most `{{…}}` in one.
/// handlebars computes each element's line and column by counting from the
/// start of the text, so compiling takes time in proportion to both: thousands
/// of sibling `{{#if}}` blocks took a second. Within these a template
/// compiles in milliseconds, and a recipe's loading stays linear in its size.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
pub const MAX_EXPRESSIONS: usize = 512;

/// How deep blocks (`{{#if}}` in `{{#each}}` …) and subexpressions (`(a (b c))`)
/// may nest. handlebars' parser takes time quadratic in the nesting and stack in
/// proportion to it: 20 000 nested `{{#if}}` took 30 s to load.
pub const MAX_NESTING: usize = 32;

fn compile(source: &str) -> Result<handlebars::Template, TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::Syntax(format!(
            "the template is {} KiB; at most {} KiB",
            source.len().div_ceil(1024),
            MAX_TEMPLATE_BYTES / 1024
        )));
    }
    let expressions = source.matches("{{").count();
    if expressions > MAX_EXPRESSIONS {
        return Err(TemplateError::Syntax(format!(
            "the template has {expressions} `{{{{…}}}}` expressions; at most {MAX_EXPRESSIONS} (split it over several fields or steps)"
        )));
    }
    let (blocks, parentheses) = nesting(source);
    if blocks > MAX_NESTING || parentheses > MAX_NESTING {
        let what = if blocks > MAX_NESTING {
            "blocks"
        } else {
            "subexpressions"
        };
        return Err(TemplateError::Syntax(format!(
            "{what} nest {} levels deep; at most {MAX_NESTING}",
            blocks.max(parentheses)
        )));
    }
    handlebars::Template::compile(source).map_err(|error| TemplateError::Syntax(syntax_message(source, &error)))
}

/// The deepest nesting of blocks and of parentheses inside expressions, found
/// in one pass over the text (before handlebars parses it).
fn nesting(source: &str) -> (usize, usize) {
    let (mut blocks, mut deepest_block) = (0usize, 0usize);
    let mut deepest_parentheses = 0usize;
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let expression = &rest[open + 2..];
        let end = expression.find("}}").unwrap_or(expression.len());
        let inside = expression[..end].trim_start_matches(['~', '{']).trim_start();
        if inside.starts_with('#') || (inside.starts_with('^') && inside.len() > 1 && !inside[1..].trim().is_empty()) {
            blocks += 1;
            deepest_block = deepest_block.max(blocks);
        } else if inside.starts_with('/') {
            blocks = blocks.saturating_sub(1);
        }
        let mut parentheses = 0usize;
        for byte in inside.bytes() {
            match byte {
                b'(' => {
                    parentheses += 1;
                    deepest_parentheses = deepest_parentheses.max(parentheses);
                }
                b')' => parentheses = parentheses.saturating_sub(1),
                _ => {}
            }
        }
        rest = &expression[end.min(expression.len())..];
    }
    (deepest_block, deepest_parentheses)
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
    fn a_path_through_a_list_by_name_says_which_and_how_to_mend_it() {
        let templates = Templates::new();
        let context = serde_json::json!({"payload": {"labels": [{"name": "bug"}], "issue": {"tags": ["a"]}}});
        for source in [
            "{{payload.labels.name}}",
            "labels: {{payload.labels.name}}!",
            "{{upper payload.labels.name}}",
        ] {
            let template = Template::compile(source).expect("compiles");
            let error = templates
                .render_text(&template, &context)
                .expect_err(source)
                .to_string();
            assert_eq!(
                error,
                "`payload.labels` is a list, so `payload.labels.name` names nothing: take one element (`payload.labels.[0].name`) or every element's `name` (`pluck payload.labels \"name\"`)",
                "{source}"
            );
        }
        let template = Template::compile("{{#each payload.issue}}{{this.tags.first}}{{/each}}").expect("compiles");
        let error = templates
            .render_text(&template, &context)
            .expect_err("relative")
            .to_string();
        assert!(
            error.starts_with("a path goes through a list by the name `tags`"),
            "{error}"
        );
    }

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
        assert_eq!(
            error.to_string(),
            "the rendered text is larger than the render budget of 4 MiB (FERRY_RENDER_MAX_BYTES)"
        );
        let context = serde_json::json!({"payload": {"items": vec![0; 10], "big": "x".repeat(100_000)}});
        assert_eq!(
            templates.render_text(&template, &context).map(|text| text.len()).ok(),
            Some(1_000_000)
        );
    }
    use serde_json::json;

    #[test]
    fn nested_loops_and_amplifying_helpers_stop_at_the_work_budget() {
        let templates = Templates::new();
        let items: Vec<u32> = (0..700).collect();
        let context = json!({"payload": {"a": items, "s": "a".repeat(1000), "t": "a".repeat(1000)}});
        let started = std::time::Instant::now();
        for source in [
            "{{#each payload.a}}{{#each ../payload.a}}{{#each ../../payload.a}}{{/each}}{{/each}}{{/each}}done",
            "{{len (replace (replace payload.s \"a\" payload.t) \"a\" payload.t)}}",
            "{{#each payload.a}}{{len (replace @root.payload.s \"a\" @root.payload.t)}}{{/each}}",
        ] {
            let template = Template::compile(source).expect(source);
            let error = templates.render_text(&template, &context).expect_err(source);
            assert!(
                matches!(error, TemplateError::OverBudget(OverBudget::Work(budget::DEFAULT_WORK))),
                "{source}: {error}"
            );
        }
        println!("three over-budget renders took {:?}", started.elapsed());
        // Within the budget, loops render as handlebars' own do.
        let template =
            Template::compile("{{#each payload.list as |item i|}}{{i}}={{item}}{{#if @last}}.{{else}},{{/if}}{{/each}}{{#each payload.none}}x{{else}}none{{/each}}{{#each payload.obj}}{{@key}}:{{this}}{{@index}}{{/each}}")
                .expect("compiles");
        let context = json!({"payload": {"list": ["a", "b"], "obj": {"k": 1, "l": 2}}});
        assert_eq!(
            templates.render_text(&template, &context).expect("renders"),
            "0=a,1=b.nonek:10l:21"
        );
    }

    #[test]
    fn deep_nesting_and_huge_templates_are_refused_before_parsing() {
        let nested = |levels: usize| format!("{}x{}", "{{#if payload.x}}".repeat(levels), "{{/if}}".repeat(levels));
        assert!(Template::compile(&nested(MAX_NESTING)).is_ok());
        let started = std::time::Instant::now();
        let error = Template::compile(&nested(200)).expect_err("too deep");
        assert_eq!(
            error.to_string(),
            "template does not parse: blocks nest 200 levels deep; at most 32"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let sequential = "{{#if payload.x}}x{{/if}}".repeat(MAX_EXPRESSIONS / 2);
        assert!(Template::compile(&sequential).is_ok(), "siblings do not nest");
        let deep = format!("{{{{len {}payload.x{}}}}}", "(default ".repeat(40), " 1)".repeat(40));
        assert!(
            Template::compile(&deep)
                .expect_err("deep")
                .to_string()
                .contains("subexpressions nest 40")
        );
        let huge = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(
            Template::compile(&huge)
                .expect_err("huge")
                .to_string()
                .contains("at most 64 KiB")
        );
        let many = "{{payload.x}}".repeat(MAX_EXPRESSIONS + 1);
        assert!(
            Template::compile(&many)
                .expect_err("many")
                .to_string()
                .contains("at most 512")
        );
    }

    #[test]
    fn a_step_s_leaves_share_one_output_budget() {
        let templates = Templates::with_budget(RenderBudget {
            work: 1_000_000,
            bytes: 1000,
            ..RenderBudget::default()
        });
        let tree = ValueTemplate::compile(&json!({"a": "{{payload.big}}", "b": "{{payload.big}}"})).expect("compiles");
        let one = ValueTemplate::compile(&json!({"a": "{{payload.big}}"})).expect("compiles");
        let context = json!({"payload": {"big": "x".repeat(600)}});
        assert!(templates.render_tree(&one, &context).is_ok());
        let error = templates.render_tree(&tree, &context).expect_err("1200 bytes");
        assert!(
            matches!(error, TemplateError::OverBudget(OverBudget::Bytes(1000))),
            "{error}"
        );
        // Each render has a budget of its own.
        assert!(templates.render_tree(&one, &context).is_ok());
    }

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
                .render_compiled(&plain.compiled, plain.source(), &context)
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
