//! What can be known about a template before it runs: helper names, root names,
//! and `steps.<id>` naming an earlier step. Field paths under `payload` and the
//! other roots are dynamic and are not checked.

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Path, PathSeg};

use super::Template;
use super::helpers::{BLOCK_HELPERS, HELPERS, is_helper};
use super::reads::PayloadReads;

/// The names a recipe's `when` and step templates may start a path with.
pub const ROOTS: &[&str] = &["payload", "headers", "query", "trigger", "steps", "ferry"];

/// Block helpers that change the context, after which paths are relative to an item.
const SCOPING_HELPERS: &[&str] = &["each", "with"];

/// What is wrong in a template, and the text it is about (a helper's name, a
/// path), so that a diagnostic can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub message: String,
    pub culprit: Option<String>,
}

impl TemplateProblem {
    fn about(culprit: &str, message: String) -> Self {
        Self {
            message,
            culprit: Some(culprit.to_owned()),
        }
    }
}

/// Names from other template languages and their Ferry helper, for the hint
/// "did you mean": spelling similarity does not find `upcase` → `upper`.
const FAMILIAR_NAMES: &[(&str, &str)] = &[
    ("upcase", "upper"),
    ("uppercase", "upper"),
    ("downcase", "lower"),
    ("lowercase", "lower"),
    ("length", "len"),
    ("size", "len"),
    ("count", "len"),
    ("tojson", "json"),
    ("to_json", "json"),
    ("dump", "json"),
    ("urlencode", "url_encode"),
    ("url_escape", "url_encode"),
    ("strip", "trim"),
    ("strftime", "format_time"),
    ("date", "format_time"),
    ("includes", "contains"),
    ("regex", "matches"),
    ("match", "matches"),
    ("equals", "eq"),
    ("b64encode", "base64"),
    ("b64decode", "base64_decode"),
    ("substring", "slice"),
    ("substr", "slice"),
];

/// The steps a template may name: their ids, and which of them loop (their
/// result is `items`).
#[derive(Clone, Copy, Default)]
pub struct EarlierSteps<'a> {
    pub ids: &'a [&'a str],
    pub loops: &'a [&'a str],
}

/// The problems of one template: `roots` are the names its paths may start with
/// (usually [`ROOTS`]), `earlier` the steps it may name.
pub fn check(template: &Template, roots: &[&str], earlier: EarlierSteps<'_>) -> Vec<TemplateProblem> {
    let mut checker = Checker {
        roots,
        earlier_steps: earlier.ids,
        loops: earlier.loops,
        problems: Vec::new(),
        called: Vec::new(),
        payload: PayloadReads::default(),
    };
    checker.elements(&template.compiled.elements, 0);
    checker.problems
}

/// What a template reads of the payload (see `reads.rs`).
pub fn payload_reads(template: &Template) -> PayloadReads {
    let mut checker = Checker {
        roots: ROOTS,
        earlier_steps: &[],
        loops: &[],
        problems: Vec::new(),
        called: Vec::new(),
        payload: PayloadReads::default(),
    };
    checker.elements(&template.compiled.elements, 0);
    checker.payload
}

/// The names of the helpers a compiled template calls (known ones only).
pub(super) fn helpers_called(compiled: &handlebars::Template) -> Vec<String> {
    let mut checker = Checker {
        roots: ROOTS,
        earlier_steps: &[],
        loops: &[],
        problems: Vec::new(),
        called: Vec::new(),
        payload: PayloadReads::default(),
    };
    checker.elements(&compiled.elements, 0);
    checker.called
}

struct Checker<'a> {
    roots: &'a [&'a str],
    earlier_steps: &'a [&'a str],
    /// Those of `earlier_steps` that are `for_each` steps.
    loops: &'a [&'a str],
    problems: Vec<TemplateProblem>,
    called: Vec<String>,
    /// The payload paths read at the top (outside `each`/`with`, or through `@root`).
    payload: PayloadReads,
}

impl Checker<'_> {
    /// `depth` counts the `each`/`with` blocks around: paths are checked against
    /// the roots only where they resolve at the top.
    fn elements(&mut self, elements: &[TemplateElement], depth: usize) {
        for element in elements {
            match element {
                TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                    self.helper(helper, depth);
                }
                TemplateElement::HelperBlock(helper) => {
                    self.helper(helper, depth);
                    let inner_depth = match &helper.name {
                        Parameter::Name(name) if SCOPING_HELPERS.contains(&name.as_str()) => depth + 1,
                        _ => depth,
                    };
                    if let Some(template) = &helper.template {
                        self.elements(&template.elements, inner_depth);
                    }
                    if let Some(inverse) = &helper.inverse {
                        self.elements(&inverse.elements, depth);
                    }
                }
                TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                    self.problems.push(TemplateProblem::about(
                        "{{>",
                        "partials (`{{> …}}`) are not part of the recipe template language".to_owned(),
                    ));
                }
                TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                    self.problems.push(TemplateProblem::about(
                        "{{*",
                        "decorators (`{{* …}}`) are not part of the recipe template language".to_owned(),
                    ));
                }
                // Text, comments, and element kinds a newer handlebars may add.
                _ => {}
            }
        }
    }

    fn helper(&mut self, helper: &HelperTemplate, depth: usize) {
        let is_call = !helper.params.is_empty() || !helper.hash.is_empty() || helper.block;
        match &helper.name {
            Parameter::Name(name) => self.helper_name(name),
            // `{{now}}` parses as a path; it is a call when a helper has that name.
            Parameter::Path(Path::Relative((segments, raw))) if is_call => match segments.as_slice() {
                [PathSeg::Named(name)] => self.helper_name(name),
                _ => self
                    .problems
                    .push(TemplateProblem::about(raw, format!("`{raw}` is not a helper"))),
            },
            Parameter::Path(path) => match helper_without_parameters(path) {
                Some(name) => self.called.push(name.to_owned()),
                None => self.path(path, depth),
            },
            Parameter::Subexpression(subexpression) => self.subexpression(&subexpression.element, depth),
            _ => {}
        }
        for parameter in helper.params.iter().chain(helper.hash.values()) {
            self.parameter(parameter, depth);
        }
    }

    fn parameter(&mut self, parameter: &Parameter, depth: usize) {
        match parameter {
            Parameter::Path(path) => self.path(path, depth),
            Parameter::Subexpression(subexpression) => self.subexpression(&subexpression.element, depth),
            _ => {}
        }
    }

    fn subexpression(&mut self, element: &TemplateElement, depth: usize) {
        if let TemplateElement::Expression(helper) = element {
            self.helper(helper, depth);
        }
    }

    fn helper_name(&mut self, name: &str) {
        if is_helper(name) {
            self.called.push(name.to_owned());
            return;
        }
        let known = HELPERS
            .iter()
            .map(|(helper, _)| *helper)
            .chain(BLOCK_HELPERS.iter().copied());
        let familiar = FAMILIAR_NAMES
            .iter()
            .find(|(other, _)| other.eq_ignore_ascii_case(name))
            .map(|(_, helper)| *helper);
        let hint = familiar
            .or_else(|| did_you_mean(name, known))
            .map(|close| format!("; did you mean `{close}`?"))
            .unwrap_or_default();
        self.problems
            .push(TemplateProblem::about(name, format!("unknown helper `{name}`{hint}")));
    }

    fn path(&mut self, path: &Path, depth: usize) {
        let Path::Relative((segments, raw)) = path else {
            return; // `@index`, `@key`: block-local values
        };
        let mut level = depth;
        let mut rest = segments.as_slice();
        while let [PathSeg::Ruled(rule), tail @ ..] = rest {
            match format!("{rule:?}").as_str() {
                "path_up" => level = level.saturating_sub(1),
                "path_root" => level = 0,
                _ => return,
            }
            rest = tail;
        }
        if level > 0 {
            return;
        }
        // A segment that is not a plain name (`..` mid-path): what it reaches
        // cannot be told, so the whole payload is read.
        if rest.iter().any(|segment| !matches!(segment, PathSeg::Named(_))) {
            self.payload = PayloadReads::all();
        }
        let names: Vec<&str> = rest
            .iter()
            .filter_map(|segment| match segment {
                PathSeg::Named(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let names = match names.as_slice() {
            ["this", tail @ ..] => tail,
            all => all,
        };
        match names {
            // `{{this}}`: the whole context.
            [] => self.payload = PayloadReads::all(),
            ["payload", below @ ..] => self.payload.read(below),
            _ => {}
        }
        let Some(root) = names.first() else {
            return;
        };
        if !self.roots.contains(root) {
            let hint = did_you_mean(root, self.roots.iter().copied())
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            self.problems.push(TemplateProblem::about(
                raw,
                format!(
                    "`{raw}` starts with `{root}`, which is not in the context; expected one of {}{hint}",
                    self.roots.join(", ")
                ),
            ));
            return;
        }
        if *root == "steps"
            && let Some(step) = names.get(1)
            && !self.earlier_steps.contains(step)
        {
            let earlier = if self.earlier_steps.is_empty() {
                "no step runs before this point".to_owned()
            } else {
                format!("the steps before this point are {}", self.earlier_steps.join(", "))
            };
            let hint = did_you_mean(step, self.earlier_steps.iter().copied())
                .map(|close| format!("; did you mean `{close}`?"))
                .unwrap_or_default();
            self.problems.push(TemplateProblem::about(
                raw,
                format!("`{raw}` names no earlier step `{step}`; {earlier}{hint}"),
            ));
        }
        if *root == "steps"
            && let [_, step, field, ..] = names
            && *field != "items"
            && self.loops.contains(step)
        {
            self.problems.push(TemplateProblem::about(
                raw,
                format!(
                    "`{raw}` reads `{field}` of `{step}`, a `for_each` step: its result is `items`, one entry per element (`steps.{step}.items.0.{field}`, or `pluck steps.{step}.items \"{field}\"`)"
                ),
            ));
        }
    }
}

/// The closest known name, when it is close enough to be a likely typo
/// (Jaro-Winkler similarity, which favours a shared beginning, as typos keep).
/// The helper a one-segment path names (`{{now}}` parses as a path), if any.
fn helper_without_parameters(path: &Path) -> Option<&str> {
    match path {
        Path::Relative((segments, _)) => match segments.as_slice() {
            [PathSeg::Named(name)] if is_helper(name) => Some(name),
            _ => None,
        },
        _ => None,
    }
}

pub fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    const LIKELY_TYPO: f64 = 0.8;
    known
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(similarity, _)| *similarity >= LIKELY_TYPO)
        .max_by(|(left, _), (right, _)| left.total_cmp(right))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(source: &str, earlier: &[&str]) -> Vec<String> {
        let earlier = EarlierSteps {
            ids: earlier,
            loops: &[],
        };
        check(&Template::compile(source).expect("parses"), ROOTS, earlier)
            .into_iter()
            .map(|problem| problem.message)
            .collect()
    }

    fn reads(source: &str) -> PayloadReads {
        payload_reads(&Template::compile(source).expect("parses"))
    }

    fn reading(paths: &[&[&str]]) -> PayloadReads {
        let mut reads = PayloadReads::default();
        for path in paths {
            reads.read(path);
        }
        reads
    }

    #[test]
    fn the_payload_paths_a_template_reads_are_found() {
        assert_eq!(
            reads("{{payload.repository.full_name}} by {{upper payload.pusher.name}} {{headers.x}}"),
            reading(&[&["repository", "full_name"], &["pusher", "name"]])
        );
        assert_eq!(
            reads("{{#each payload.commits}}{{id}} {{../payload.ref}} {{@root.payload.after}}{{/each}}"),
            reading(&[&["commits"], &["ref"], &["after"]])
        );
        assert_eq!(reads("{{#if (eq payload.a.b 1)}}x{{/if}}"), reading(&[&["a", "b"]]));
        assert_eq!(reads("{{steps.first.body}} {{now}}"), PayloadReads::default());
        for whole in [
            "{{json payload}}",
            "{{payload}}",
            "{{lookup payload \"key\"}}",
            "{{this}}",
            "{{#with payload}}{{a}}{{/with}}",
            "{{#each payload.items}}{{../this}}{{/each}}",
        ] {
            assert!(reads(whole).is_all(), "{whole}");
        }
    }

    #[test]
    fn known_helpers_roots_and_steps_pass() {
        for source in [
            "{{payload.a}} {{len payload.list}} {{now}} {{eq (len steps.first.body) 2}}",
            "{{#each payload.items}}{{this.name}} {{name}} {{@index}} {{../payload.x}}{{/each}}",
            "{{#if (gt payload.n 1)}}{{headers.x-github-delivery}}{{else}}{{ferry.url}}{{/if}}",
            "{{lookup payload \"key\"}} {{@root.trigger.run_id}}",
        ] {
            assert_eq!(problems(source, &["first"]), Vec::<String>::new(), "{source}");
        }
    }

    #[test]
    fn unknown_helper_gets_a_suggestion() {
        assert_eq!(
            problems("{{lenn payload.items}}", &[]),
            ["unknown helper `lenn`; did you mean `len`?"]
        );
        assert_eq!(
            problems("{{uper payload.a}}", &[]),
            ["unknown helper `uper`; did you mean `upper`?"]
        );
        assert_eq!(problems("{{frobnicate 1}}", &[]), ["unknown helper `frobnicate`"]);
        assert_eq!(
            problems("{{upcase payload.a}}", &[]),
            ["unknown helper `upcase`; did you mean `upper`?"],
            "a name from Liquid"
        );
        assert_eq!(
            problems("{{log \"x\"}}", &[]),
            ["unknown helper `log`"],
            "handlebars' log is not in the language"
        );
    }

    #[test]
    fn unknown_root_and_later_step_are_reported() {
        assert_eq!(
            problems("{{paylod.name}}", &[]),
            [
                "`paylod.name` starts with `paylod`, which is not in the context; expected one of payload, headers, query, trigger, steps, ferry; did you mean `payload`?"
            ]
        );
        assert_eq!(
            problems("{{steps.later.body}}", &["first"]),
            ["`steps.later.body` names no earlier step `later`; the steps before this point are first"]
        );
        assert_eq!(
            problems("{{steps.frist.body}}", &["first"]),
            [
                "`steps.frist.body` names no earlier step `frist`; the steps before this point are first; did you mean `first`?"
            ]
        );
        assert_eq!(
            problems("{{#each payload.items}}{{../steps.x}}{{/each}}", &[]),
            ["`../steps.x` names no earlier step `x`; no step runs before this point"]
        );
    }
}
