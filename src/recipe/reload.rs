//! Hot reload: the recipes folder loaded again, merged with the set in force.
//!
//! A file whose new version fails to load keeps its previous version running
//! (its problems are still shown); a file that is gone takes its recipe with it.
//! The merged set replaces the old one in one swap, so a webhook sees either the
//! old set or the new one, never half of each.

use std::sync::Arc;

use super::{Diagnostic, RecipeSet, Trigger};

/// What a reload changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        id: String,
        version: String,
    },
    Updated {
        id: String,
        from: String,
        to: String,
    },
    Removed {
        id: String,
    },
    /// The file's new version does not load; the previous one keeps running.
    Kept {
        id: String,
        problems: Vec<Diagnostic>,
    },
    /// A new file that does not load.
    Failed {
        problems: Vec<Diagnostic>,
    },
}

/// Merges a freshly loaded folder with the set in force.
pub fn merge(previous: &RecipeSet, mut fresh: RecipeSet) -> (RecipeSet, Vec<Change>) {
    let mut changes = Vec::new();
    for old in previous.recipes() {
        if let Some(new) = fresh.recipes.get(&old.id) {
            if new.version != old.version {
                changes.push(Change::Updated {
                    id: old.id.clone(),
                    from: old.version.clone(),
                    to: new.version.clone(),
                });
            }
            continue;
        }
        let problems: Vec<Diagnostic> = fresh
            .problems
            .iter()
            .filter(|problem| problem.file == old.file)
            .cloned()
            .collect();
        if problems.is_empty() {
            changes.push(Change::Removed { id: old.id.clone() });
            continue;
        }
        // Kept only where it still fits: its hook path not taken by another file.
        if let Trigger::Webhook { path, .. } = &old.trigger {
            if fresh.hooks.contains_key(path) {
                changes.push(Change::Removed { id: old.id.clone() });
                continue;
            }
            fresh.hooks.insert(path.clone(), old.id.clone());
        }
        fresh.recipes.insert(old.id.clone(), Arc::clone(old));
        changes.push(Change::Kept {
            id: old.id.clone(),
            problems,
        });
    }
    for new in fresh.recipes() {
        if previous.get(&new.id).is_none() {
            changes.push(Change::Added {
                id: new.id.clone(),
                version: new.version.clone(),
            });
        }
    }
    let kept_files: Vec<_> = fresh.recipes().map(|recipe| recipe.file.clone()).collect::<Vec<_>>();
    let mut new_failures: Vec<Diagnostic> = fresh
        .problems
        .iter()
        .filter(|problem| !kept_files.contains(&problem.file))
        .cloned()
        .collect();
    new_failures.dedup_by(|left, right| left.file == right.file);
    for problem in new_failures {
        let problems = fresh
            .problems
            .iter()
            .filter(|other| other.file == problem.file)
            .cloned()
            .collect();
        changes.push(Change::Failed { problems });
    }
    (fresh, changes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::recipe::{Environment, load_folder};

    fn folder(files: &[(&str, &str)]) -> (tempfile::TempDir, RecipeSet) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let set = load_folder(dir.path(), &Environment::default()).expect("load");
        (dir, set)
    }

    fn reload(dir: &Path) -> RecipeSet {
        load_folder(dir, &Environment::default()).expect("load")
    }

    const HOOK: &str = "trigger: {webhook: {}}\nsteps: [{log: one}]\n";

    #[test]
    fn a_broken_new_version_keeps_the_old_one_and_reports_it() {
        let (dir, before) = folder(&[("a.yaml", HOOK), ("b.yaml", HOOK)]);
        std::fs::write(dir.path().join("a.yaml"), "trigger: {webhook: {}}\nstepz: []\n").expect("write");
        std::fs::write(
            dir.path().join("b.yaml"),
            "trigger: {webhook: {}}\nsteps: [{log: two}]\n",
        )
        .expect("write");
        let (after, changes) = merge(&before, reload(dir.path()));
        assert!(Arc::ptr_eq(after.get("a").expect("kept"), before.get("a").expect("a")));
        assert!(after.by_hook_path("a").is_some(), "its webhook still answers");
        assert_eq!(after.problems().len(), 1, "and its problem is shown");
        assert!(
            matches!(&changes[0], Change::Kept { id, .. } if id == "a"),
            "{changes:?}"
        );
        assert!(
            matches!(&changes[1], Change::Updated { id, .. } if id == "b"),
            "{changes:?}"
        );
    }

    #[test]
    fn removed_files_take_their_recipes_and_new_broken_files_are_reported() {
        let (dir, before) = folder(&[("a.yaml", HOOK)]);
        std::fs::remove_file(dir.path().join("a.yaml")).expect("remove");
        std::fs::write(dir.path().join("c.yaml"), "nonsense: [").expect("write");
        std::fs::write(dir.path().join("d.yaml"), HOOK).expect("write");
        let (after, changes) = merge(&before, reload(dir.path()));
        assert!(after.get("a").is_none() && after.by_hook_path("a").is_none());
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes.contains(&Change::Removed { id: "a".into() }));
        assert!(
            changes
                .iter()
                .any(|change| matches!(change, Change::Added { id, .. } if id == "d"))
        );
        assert!(
            changes
                .iter()
                .any(|change| matches!(change, Change::Failed { problems } if problems.len() == 1))
        );
    }
}
