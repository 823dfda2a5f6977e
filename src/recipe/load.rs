//! Reading the recipes folder: every `*.yaml` / `*.yml` except `*.test.yaml`
//! (recipe tests), in file-name order so that "which one came first" is stable.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::{MessageFormatter, Spanned};
use sha2::{Digest, Sha256};

use super::claims::{self, ClaimKey, ClaimKind};
use super::config::RecipeFile;
use super::schema;
use super::tree::{self, Node};
use super::validate::validate;
use super::{Diagnostic, Environment, Recipe, RecipeSet, Trigger};
use crate::environment::filling;

/// Loads every recipe in `folder` on its own, as `ferry check`, `ferry run` and
/// `ferry test` do: with no claims remembered, file-name order decides who owns
/// an id or a path, and a conflict is a problem of both files (whichever is
/// first where it is deployed, one of them will not load). Problems are
/// collected in the set, never returned as an error: one broken file must not
/// stop the others. Only a folder that cannot be listed is an error. The daemon
/// loads with its claims instead (`reload.rs`).
pub fn load_folder(folder: &Path, environment: &Environment) -> std::io::Result<RecipeSet> {
    let loaded: Vec<(PathBuf, Outcome)> = recipe_files(folder)?
        .into_iter()
        .map(|file| {
            let recipe = read_and_load(&file, environment);
            (file, recipe)
        })
        .collect();
    let conflicts = every_conflict(&loaded);
    let mut set = RecipeSet {
        parsed: loaded.len(),
        ..RecipeSet::default()
    };
    for (file, recipe) in loaded {
        let recipe = match recipe {
            Ok(recipe) => recipe,
            Err(problems) => {
                set.problems.entry(file).or_default().extend(problems);
                continue;
            }
        };
        let name = claims::file_name(&file);
        let wanted = claimed_by(&recipe);
        // The first file in name order keeps a name; the conflict is reported below.
        if wanted.iter().any(|key| set.claims.owner(key.0, &key.1).is_some()) {
            continue;
        }
        for key in wanted {
            set.claims.insert(key, name.clone());
        }
        set.serve(recipe);
    }
    for conflict in conflicts {
        set.problems.entry(conflict.file.clone()).or_default().push(conflict);
    }
    Ok(set)
}

/// The recipe files of a folder, in name order.
pub(super) fn recipe_files(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(folder)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| is_recipe_name(path) && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a file and loads its recipe.
pub(super) fn read_and_load(file: &Path, environment: &Environment) -> Outcome {
    fs::read_to_string(file)
        .map_err(|error| vec![Diagnostic::new(file, None, format!("cannot read the file: {error}"))])
        .and_then(|text| load_source(file, &text, environment))
        .map(Arc::new)
}

/// What tells a file's versions apart without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
    changed_ns: i64,
}

impl FileStamp {
    /// `None` when the path is not a regular file (gone, or a folder).
    pub(super) fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = fs::metadata(path).ok().filter(fs::Metadata::is_file)?;
        Some(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: metadata.ino(),
            changed_ns: metadata
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.ctime_nsec()),
        })
    }
}

/// A file's recipe, or why it did not load.
pub(super) type Outcome = Result<Arc<Recipe>, Vec<Diagnostic>>;

/// One file's outcome in a load, kept for the next.
#[derive(Debug, Clone)]
pub(super) struct FileLoad {
    pub(super) stamp: FileStamp,
    pub(super) outcome: Outcome,
}

/// Offline, every id or path that several files declare is a problem of each of
/// them, naming the others: whichever is first where it is deployed, one of
/// them will not load.
fn every_conflict(loaded: &[(PathBuf, Outcome)]) -> Vec<Diagnostic> {
    let mut claimants: BTreeMap<ClaimKey, Vec<&Recipe>> = BTreeMap::new();
    for recipe in loaded.iter().filter_map(|(_, recipe)| recipe.as_deref().ok()) {
        for key in claimed_by(recipe) {
            claimants.entry(key).or_default().push(recipe);
        }
    }
    let mut problems = Vec::new();
    for ((kind, claimed), recipes) in claimants.iter().filter(|(_, recipes)| recipes.len() > 1) {
        for recipe in recipes {
            let others: Vec<String> = recipes
                .iter()
                .filter(|other| other.file != recipe.file)
                .map(|other| claims::file_name(&other.file))
                .collect();
            problems.push(Diagnostic::at(
                &recipe.file,
                claim_position(recipe, *kind),
                format!(
                    "{} `{claimed}` is also claimed by {}; a daemon serves the file that claimed it first and refuses the other",
                    kind.describe(),
                    others.join(", ")
                ),
            ));
        }
    }
    problems
}

pub(super) fn claim_position(recipe: &Recipe, kind: ClaimKind) -> super::Position {
    match kind {
        ClaimKind::Id => recipe.id_at,
        ClaimKind::Path => recipe.trigger_at,
    }
}

/// The id and the webhook path a recipe claims.
pub(super) fn claimed_by(recipe: &Recipe) -> Vec<ClaimKey> {
    let mut keys = vec![(ClaimKind::Id, recipe.id.clone())];
    if let Trigger::Webhook { path, .. } = &recipe.trigger {
        keys.push((ClaimKind::Path, path.clone()));
    }
    keys
}

/// What `ferry check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Recipes that loaded.
    pub recipes: usize,
    pub problems: Vec<Diagnostic>,
    /// Of recipes that loaded.
    pub warnings: Vec<Diagnostic>,
}

/// Checks recipe files and folders. A file is checked together with the rest of
/// its folder (a webhook path used twice is a problem of the later file), but only
/// its own problems are reported. A path that does not exist is an error.
pub fn check_paths(paths: &[PathBuf], environment: &Environment) -> Result<CheckReport, String> {
    let mut report = CheckReport::default();
    for path in paths {
        if path.is_dir() {
            let set = load_folder(path, environment)
                .map_err(|error| format!("cannot read the folder {}: {error}", path.display()))?;
            report.recipes += set.len();
            report
                .warnings
                .extend(set.recipes().flat_map(|recipe| recipe.warnings.iter().cloned()));
            report.warnings.extend(set.watch_warnings());
            report.problems.extend(set.problems().cloned());
        } else if path.is_file() {
            let folder = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let set = load_folder(folder, environment)
                .map_err(|error| format!("cannot read the folder {}: {error}", folder.display()))?;
            let same_file = |other: &Path| other.file_name() == path.file_name();
            if !is_recipe_name(path) {
                // Named explicitly, so checked even with another extension.
                match fs::read_to_string(path) {
                    Ok(text) => match load_source(path, &text, environment) {
                        Ok(recipe) => {
                            report.recipes += 1;
                            report.warnings.extend(recipe.warnings);
                        }
                        Err(problems) => report.problems.extend(problems),
                    },
                    Err(error) => {
                        report
                            .problems
                            .push(Diagnostic::new(path, None, format!("cannot read the file: {error}")))
                    }
                }
                continue;
            }
            let watch_warnings = set.watch_warnings();
            for recipe in set.recipes().filter(|recipe| same_file(&recipe.file)) {
                report.recipes += 1;
                let own_watch_warnings = watch_warnings.iter().filter(|warning| same_file(&warning.file));
                report.warnings.extend(
                    recipe
                        .warnings
                        .iter()
                        .chain(own_watch_warnings)
                        .cloned()
                        .map(|mut warning| {
                            warning.file = path.clone();
                            warning
                        }),
                );
            }
            report.problems.extend(
                set.problems()
                    .filter(|problem| same_file(&problem.file))
                    .map(|problem| {
                        let mut problem = problem.clone();
                        problem.file = path.clone();
                        problem
                    }),
            );
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(report)
}

/// Parses and validates one recipe from its text. `file` names it in diagnostics
/// and gives the default id (its stem). Every diagnostic points at the text it
/// is about.
pub fn load_source(file: &Path, text: &str, environment: &Environment) -> Result<Recipe, Vec<Diagnostic>> {
    let pinpointed = |mut diagnostics: Vec<Diagnostic>| {
        diagnostics.iter_mut().for_each(|diagnostic| diagnostic.pinpoint(text));
        diagnostics
    };
    let mut recipe = parse_and_validate(file, text, environment).map_err(pinpointed)?;
    recipe.warnings = pinpointed(std::mem::take(&mut recipe.warnings));
    Ok(recipe)
}

fn parse_and_validate(file: &Path, text: &str, environment: &Environment) -> Result<Recipe, Vec<Diagnostic>> {
    let yaml_error = |error: serde_saphyr::Error| {
        // The formatter gives the message alone; the place goes in front, once.
        let message = serde_saphyr::DefaultMessageFormatter.format_message(&error);
        vec![Diagnostic::new(file, error.location(), message.into_owned())]
    };
    let tree: Spanned<Node> = serde_saphyr::from_str(text).map_err(yaml_error)?;
    let misfits = schema::check(&tree);
    if !misfits.is_empty() {
        return Err(misfits
            .into_iter()
            .map(|problem| Diagnostic::new(file, Some(problem.location), problem.message))
            .collect());
    }
    let (parsed, filled) = filling(environment, || serde_saphyr::from_str::<RecipeFile>(text));
    let parsed = parsed.map_err(|error| {
        // A type error ("invalid u32") says more with the key it is about.
        let mut problems = yaml_error(error);
        if let Some(problem) = problems.first_mut()
            && let Some(path) = tree::path_at(&tree, problem.line, problem.column)
        {
            problem.message = format!("`{path}`: {}", problem.message);
        }
        problems
    })?;
    if !filled.problems.is_empty() {
        return Err(filled
            .problems
            .into_iter()
            .map(|(location, message)| Diagnostic::new(file, Some(location), message))
            .collect());
    }
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut recipe = validate(file, &stem, content_hash(text), parsed, filled.secrets)?;
    recipe.source = text.to_owned();
    Ok(recipe)
}

/// Whether a path names a recipe file (not a recipe test, not hidden).
pub(super) fn is_recipe_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".test.yaml")
        && !name.ends_with(".test.yml")
        && !name.starts_with('.')
}

/// The recipe version: the first 16 hex digits of the file's SHA-256.
fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        load_source(Path::new("recipes/demo.yaml"), text, &Environment::default())
            .expect_err("must fail")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn loads_a_webhook_recipe_with_defaults() {
        let recipe = load_source(
            Path::new("recipes/hello.yaml"),
            "trigger:\n  webhook: {}\nsteps:\n  - log: 'hi {{payload.name}}'\n",
            &Environment::default(),
        )
        .expect("loads");
        assert_eq!(recipe.id, "hello");
        assert!(matches!(&recipe.trigger, Trigger::Webhook { path, .. } if path == "hello"));
        assert_eq!(recipe.steps[0].id, "step1");
        assert_eq!(recipe.concurrency, crate::recipe::DEFAULT_CONCURRENCY);
        assert_eq!(recipe.version.len(), 16);
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let found = problems("trigger:\n  webhook: {}\nsteps:\n  - log: hi\n    retries: 3\n");
        let keys = crate::recipe::config::StepConfig::keys().join(", ");
        assert_eq!(
            found,
            [format!(
                "recipes/demo.yaml:5:5: unknown key `retries` in a step; expected one of {keys}; did you mean `retry`?"
            )]
        );
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let found = problems(
            "trigger:\n  webhook:\n    rate: 10/s\n    pth: x\nstep: []\nsteps:\n  - http: {url: u, json: {anything: 1}, headres: {}}\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("recipes/demo.yaml:4:5: unknown key `pth` in `webhook`; expected one of path, ")
                && found[0].ends_with("; did you mean `path`?"),
            "{}",
            found[0]
        );
        assert!(
            found[1].starts_with("recipes/demo.yaml:5:1: unknown key `step` in the recipe"),
            "{}",
            found[1]
        );
        assert!(
            found[2].contains("unknown key `headres` in `http`") && found[2].contains("did you mean `headers`?"),
            "{}",
            found[2]
        );
    }

    #[test]
    fn every_type_error_is_reported_and_names_its_key() {
        let found = problems(
            "trigger: {webhook: {}}\nconcurrency: many\nsteps:\n  - log: x\n    retry: {attempts: lots}\n  - log: [a]\n    retry: {attempts: -1}\n",
        );
        assert_eq!(
            found,
            [
                "recipes/demo.yaml:2:14: `concurrency` must be a whole number, not text",
                "recipes/demo.yaml:5:23: `steps[0].retry.attempts` must be a whole number, not text",
                "recipes/demo.yaml:6:10: `steps[1].log` must be text, not a list",
                "recipes/demo.yaml:7:23: `steps[1].retry.attempts` is -1; it must be 0 to 4294967295",
            ]
        );
    }

    #[test]
    fn the_schema_finds_missing_keys_and_kinds_in_every_part_at_once() {
        let found = problems(
            "trigger: {webhook: {}, schedule: {every: 1m}}\nsteps:\n  - http: {method: POST}\n  - http: {url: x, auth: {}}\n",
        );
        assert_eq!(
            found,
            [
                "recipes/demo.yaml:1:10: `trigger` has both `webhook` and `schedule`; give one of `webhook`, `schedule`, `poll`, `failure`",
                "recipes/demo.yaml:3:11: `http` needs `url`",
                "recipes/demo.yaml:4:26: `auth` needs one of `bearer`, `basic`",
            ]
        );
        // A misspelt required key is one problem: the unknown key, with the fix.
        let found = problems("trigger: {webhook: {}}\nstep:\n  - log: x\n");
        assert_eq!(
            found,
            [
                "recipes/demo.yaml:2:1: unknown key `step` in the recipe; expected one of id, description, enabled, trigger, when, steps, concurrency, timeout, on_failure; did you mean `steps`?"
            ]
        );
    }

    #[test]
    fn a_yaml_syntax_error_is_one_diagnostic() {
        let found = problems("trigger:\n  webhook: {\nsteps: [\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("recipes/demo.yaml:"), "{}", found[0]);
    }

    #[test]
    fn validation_problems_are_all_reported_with_places() {
        let found = problems(
            "trigger:\n  webhook: {}\nsteps:\n  - id: Bad\n    log: hi\n  - http:\n      url: 'x{{#if}}'\n    timeout: soon\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("recipes/demo.yaml:4:9: step id `Bad`"),
            "{}",
            found[0]
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("recipes/demo.yaml:7:12: step `step2` `url`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("recipes/demo.yaml:8:14: step `step2` `timeout`")),
            "{found:?}"
        );
    }

    #[test]
    fn a_step_needs_exactly_one_action() {
        let found = problems("trigger:\n  webhook: {}\nsteps:\n  - id: nothing\n");
        assert!(found[0].contains("step `nothing` has no action"), "{found:?}");
    }

    #[test]
    fn templates_are_checked_for_helpers_roots_and_earlier_steps() {
        let found = problems(
            "trigger:\n  webhook: {}\nwhen: '{{paylod.ok}}'\nsteps:\n  - id: first\n    http:\n      url: 'http://x/{{steps.second.body}}'\n      json:\n        a: ['{{uper payload.a}}']\n  - id: second\n    log: '{{steps.first.status}}'\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("recipes/demo.yaml:3:10: `when`: `paylod.ok` starts with `paylod`"),
            "{}",
            found[0]
        );
        assert!(
            found[1].starts_with(
                "recipes/demo.yaml:7:24: step `first` `url`: `steps.second.body` names no earlier step `second`"
            ),
            "{}",
            found[1]
        );
        assert!(
            found[2].starts_with(
                "recipes/demo.yaml:9:16: step `first` `json` at $.a[0]: unknown helper `uper`; did you mean `upper`?"
            ),
            "{}",
            found[2]
        );
    }

    #[test]
    fn environment_values_fill_strings_and_a_missing_one_is_placed() {
        let environment = Environment::from_pairs([("HOOK_PATH", "incoming"), ("API_KEY", "key-123456")]);
        let recipe = load_source(
            Path::new("recipes/env.yaml"),
            "trigger:\n  webhook: {path: '${HOOK_PATH}'}\nsteps:\n  - http:\n      url: 'http://x/${REGION:-eu}'\n      headers: {X-Key: '${API_KEY}'}\n",
            &environment,
        )
        .expect("loads");
        assert!(matches!(&recipe.trigger, Trigger::Webhook { path, .. } if path == "incoming"));
        assert_eq!(recipe.redactor.text("key-123456"), "[redacted:API_KEY]");

        let found = problems("trigger:\n  webhook: {}\nsteps:\n  - log: 'token ${NOPE}'\n");
        assert_eq!(
            found,
            [
                "recipes/demo.yaml:4:10: environment variable `NOPE` is not set; set it, or write `${NOPE:-default}` to give a default"
            ]
        );
    }

    #[test]
    fn a_step_has_at_most_one_body_and_one_auth_scheme() {
        let found = problems("trigger: {webhook: {}}\nsteps:\n  - http: {url: u, json: {a: 1}, body: text}\n");
        assert_eq!(
            found,
            ["recipes/demo.yaml:3:5: step `step1` has json and body; give at most one body"]
        );
        let found = problems(
            "trigger: {webhook: {}}\nsteps:\n  - http: {url: u, auth: {bearer: a, basic: {username: u, password: p}}}\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("recipes/demo.yaml:3:"), "{}", found[0]);
    }
}
