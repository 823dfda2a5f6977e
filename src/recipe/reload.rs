//! The daemon's loading of the recipes folder: the first load with the claims
//! its database remembers, then hot reloads that look only at the files that
//! changed.
//!
//! Identity: the first file to claim a recipe id or a webhook path keeps it (see
//! `claims.rs`). A file whose new version does not load — broken, or declaring
//! a name another file owns — keeps its previous version running and what it
//! claimed, and its problems are shown. A file that is gone takes its recipe and
//! its claims with it; a freed name goes to the files that wanted it, tried again
//! in file-name order.
//!
//! Cost: a reload stats and parses the changed files only and changes the set
//! in O(log n) per file (persistent maps), so touching one file of 10 000 costs
//! about what touching one of 10 does. The new set replaces the old one in one
//! swap: a webhook sees either the old set or the new one, never half of each.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::claims::{self, ClaimChanges, ClaimKey, Claims};
use super::load::{FileLoad, FileStamp, claim_position, claimed_by, is_recipe_name, read_and_load, recipe_files};
use super::{Diagnostic, Environment, Recipe, RecipeSet, Trigger};

/// Which files to look at again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// The whole folder: the first load, or after the watcher lost track.
    Everything,
    /// These paths, as the folder watcher reported them (any folder prefix: only
    /// the file name is used).
    Files(BTreeSet<PathBuf>),
}

impl Changed {
    /// Both at once.
    pub fn absorb(&mut self, other: Changed) {
        match (&mut *self, other) {
            (Changed::Everything, _) => {}
            (_, Changed::Everything) => *self = Changed::Everything,
            (Changed::Files(mine), Changed::Files(theirs)) => mine.extend(theirs),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Changed::Files(files) if files.is_empty())
    }
}

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
    /// A file that does not load and serves no earlier version.
    Failed {
        problems: Vec<Diagnostic>,
    },
}

impl Change {
    /// The recipe whose version in force changed, if any.
    pub fn recipe(&self) -> Option<&str> {
        match self {
            Change::Added { id, .. } | Change::Updated { id, .. } | Change::Removed { id } => Some(id),
            Change::Kept { .. } | Change::Failed { .. } => None,
        }
    }
}

/// A load's outcome: the set to put in force, what changed, and what to store.
#[derive(Debug)]
pub struct Reloaded {
    pub set: RecipeSet,
    pub changes: Vec<Change>,
    pub claims: ClaimChanges,
}

/// Loads every recipe in `folder` as the daemon does at start: the ids and paths
/// in `claims` stay with their owners, a file that claims a taken one fails to
/// load, and the set carries the claims that stand after this load.
pub fn load_folder_claimed(folder: &Path, environment: &Environment, claims: &Claims) -> std::io::Result<RecipeSet> {
    let start = RecipeSet {
        claims: claims.clone(),
        ..RecipeSet::default()
    };
    Ok(reload_folder(folder, environment, &start, &Changed::Everything)?.set)
}

/// Loads the `changed` files of `folder` again over the set in force. A file
/// whose size, times and inode are those of its previous load is not read again.
/// Only [`Changed::Everything`] lists the folder; only it can fail (when the
/// folder cannot be listed).
pub fn reload_folder(
    folder: &Path,
    environment: &Environment,
    previous: &RecipeSet,
    changed: &Changed,
) -> std::io::Result<Reloaded> {
    let paths: BTreeSet<PathBuf> = match changed {
        Changed::Everything => recipe_files(folder)?
            .into_iter()
            .chain(previous.files.keys().cloned())
            .chain(previous.claims.files().map(|name| folder.join(name)))
            .collect(),
        Changed::Files(paths) => paths
            .iter()
            .filter_map(|path| path.file_name())
            .map(|name| folder.join(name))
            .filter(|path| is_recipe_name(path))
            .collect(),
    };
    let mut reload = Reload {
        set: RecipeSet {
            parsed: 0,
            ..previous.clone()
        },
        changes: Vec::new(),
        claims: ClaimChanges::default(),
        pending: BTreeSet::new(),
    };
    for path in paths {
        let Some(stamp) = FileStamp::of(&path) else {
            reload.forget(&path);
            continue;
        };
        if reload.set.files.get(&path).is_some_and(|before| before.stamp == stamp) {
            continue;
        }
        let outcome = read_and_load(&path, environment);
        reload.set.parsed += 1;
        reload.set.files.insert(path.clone(), FileLoad { stamp, outcome });
        reload.pending.insert(path);
    }
    while let Some(path) = reload.pending.pop_first() {
        reload.place(&path);
    }
    Ok(Reloaded {
        set: reload.set,
        changes: reload.changes,
        claims: reload.claims,
    })
}

/// A reload in progress.
struct Reload {
    set: RecipeSet,
    changes: Vec<Change>,
    claims: ClaimChanges,
    /// Files whose outcome is still to be put in force, in name order.
    pending: BTreeSet<PathBuf>,
}

impl Reload {
    /// A file that is gone: its recipe, problems and claims go with it.
    fn forget(&mut self, path: &Path) {
        let name = claims::file_name(path);
        if let Some(old) = self.set.serving(path) {
            self.set.unserve(&old);
            self.changes.push(Change::Removed { id: old.id.clone() });
        }
        self.set.files.remove(path);
        self.set.problems.remove(path);
        self.set.refused.remove(path);
        let owned = self.set.claims.of_file(&name).to_vec();
        self.free(owned);
    }

    /// Puts a file's new outcome in force, or keeps what it served.
    fn place(&mut self, path: &Path) {
        let Some(outcome) = self.set.files.get(path).map(|load| load.outcome.clone()) else {
            return;
        };
        let serving = self.set.serving(path);
        let recipe = match outcome {
            Ok(recipe) => recipe,
            Err(problems) => {
                self.set.refused.remove(path);
                self.refuse(path, serving, problems);
                return;
            }
        };
        let name = claims::file_name(path);
        let wanted = claimed_by(&recipe);
        let taken: Vec<Diagnostic> = wanted
            .iter()
            .filter_map(|(kind, claimed)| {
                let owner = self.set.claims.owner(*kind, claimed).filter(|owner| *owner != name)?;
                Some(Diagnostic::at(
                    path,
                    claim_position(&recipe, *kind),
                    format!(
                        "{} `{claimed}` belongs to {owner}, which claimed it first; {name} cannot use it (rename it here, or remove {owner} to free it)",
                        kind.describe()
                    ),
                ))
            })
            .collect();
        if !taken.is_empty() {
            self.set.refused.insert(path.to_owned());
            self.refuse(path, serving, taken);
            return;
        }
        if let Some(old) = &serving {
            self.set.unserve(old);
        }
        let let_go: Vec<ClaimKey> = self
            .set
            .claims
            .of_file(&name)
            .iter()
            .filter(|key| !wanted.contains(key))
            .cloned()
            .collect();
        self.free(let_go);
        for key in wanted {
            if self.set.claims.owner(key.0, &key.1).is_none() {
                self.set.claims.insert(key.clone(), name.clone());
                self.claims.taken.push((key, name.clone()));
            }
        }
        self.set.serve(Arc::clone(&recipe));
        self.set.problems.remove(path);
        self.set.refused.remove(path);
        match serving {
            None => self.changes.push(Change::Added {
                id: recipe.id.clone(),
                version: recipe.version.clone(),
            }),
            Some(old) if old.id != recipe.id => {
                self.changes.push(Change::Removed { id: old.id.clone() });
                self.changes.push(Change::Added {
                    id: recipe.id.clone(),
                    version: recipe.version.clone(),
                });
            }
            Some(old) if old.version != recipe.version => self.changes.push(Change::Updated {
                id: recipe.id.clone(),
                from: old.version.clone(),
                to: recipe.version.clone(),
            }),
            Some(_) => {}
        }
    }

    /// A new version that does not load: the previous one, if any, serves on.
    fn refuse(&mut self, path: &Path, serving: Option<Arc<Recipe>>, problems: Vec<Diagnostic>) {
        self.set.problems.insert(path.to_owned(), problems.clone());
        self.changes.push(match serving {
            Some(old) => Change::Kept {
                id: old.id.clone(),
                problems,
            },
            None => Change::Failed { problems },
        });
    }

    /// Names nobody owns any more: the refused files are tried again.
    fn free(&mut self, keys: Vec<ClaimKey>) {
        if keys.is_empty() {
            return;
        }
        for key in keys {
            self.set.claims.remove(&key);
            self.claims.taken.retain(|(taken, _)| *taken != key);
            self.claims.freed.push(key);
        }
        self.pending.extend(self.set.refused.iter().cloned());
    }
}

impl RecipeSet {
    /// The recipe a file serves now, if any.
    fn serving(&self, path: &Path) -> Option<Arc<Recipe>> {
        let name = claims::file_name(path);
        self.claims
            .of_file(&name)
            .iter()
            .find(|(kind, _)| *kind == claims::ClaimKind::Id)
            .and_then(|(_, id)| self.recipes.get(id))
            .filter(|recipe| recipe.file == path)
            .cloned()
    }

    pub(super) fn serve(&mut self, recipe: Arc<Recipe>) {
        if let Trigger::Webhook { path, .. } = &recipe.trigger {
            self.hooks.insert(path.clone(), recipe.id.clone());
        }
        self.recipes.insert(recipe.id.clone(), recipe);
    }

    fn unserve(&mut self, recipe: &Recipe) {
        if let Trigger::Webhook { path, .. } = &recipe.trigger
            && self.hooks.get(path) == Some(&recipe.id)
        {
            self.hooks.remove(path);
        }
        self.recipes.remove(&recipe.id);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::recipe::ClaimKind;

    fn folder(files: &[(&str, &str)]) -> (tempfile::TempDir, RecipeSet) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let set = load_folder_claimed(dir.path(), &Environment::default(), &Claims::default()).expect("load");
        (dir, set)
    }

    fn reload(dir: &Path, previous: &RecipeSet, files: &[&str]) -> Reloaded {
        let changed = Changed::Files(files.iter().map(|name| dir.join(name)).collect());
        reload_folder(dir, &Environment::default(), previous, &changed).expect("reload")
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
        let Reloaded {
            set: after, changes, ..
        } = reload(dir.path(), &before, &["a.yaml", "b.yaml"]);
        assert!(Arc::ptr_eq(after.get("a").expect("kept"), before.get("a").expect("a")));
        assert!(after.by_hook_path("a").is_some(), "its webhook still answers");
        assert_eq!(after.problems().count(), 1, "and its problem is shown");
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
        let Reloaded {
            set: after,
            changes,
            claims,
        } = reload(dir.path(), &before, &["a.yaml", "c.yaml", "d.yaml"]);
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
        assert!(claims.freed.contains(&(ClaimKind::Id, "a".to_owned())), "{claims:?}");
        assert!(
            claims
                .taken
                .contains(&((ClaimKind::Path, "d".to_owned()), "d.yaml".to_owned())),
            "{claims:?}"
        );
    }

    #[test]
    fn a_freed_name_goes_to_the_file_that_wanted_it() {
        let shared = "trigger: {webhook: {path: shared}}\nsteps: [{log: ok}]\n";
        let (dir, before) = folder(&[("a.yaml", shared), ("b.yaml", shared)]);
        assert!(before.get("a").is_some() && before.get("b").is_none());
        // An unrelated edit leaves the refused file refused.
        std::fs::write(dir.path().join("c.yaml"), HOOK).expect("write");
        let after = reload(dir.path(), &before, &["c.yaml"]).set;
        assert!(after.get("b").is_none() && after.problems().count() == 1);
        // a moves away: b takes the path without being read again.
        std::fs::write(
            dir.path().join("a.yaml"),
            "trigger: {webhook: {path: elsewhere}}\nsteps: [{log: ok}]\n",
        )
        .expect("write");
        let moved = reload(dir.path(), &after, &["a.yaml"]);
        assert_eq!(moved.set.parsed(), 1);
        assert_eq!(moved.set.by_hook_path("shared").expect("shared").id, "b");
        assert_eq!(moved.set.by_hook_path("elsewhere").expect("elsewhere").id, "a");
        assert_eq!(moved.set.problems().count(), 0);
        assert_eq!(moved.set.claims().owner(ClaimKind::Path, "shared"), Some("b.yaml"));
    }

    #[test]
    fn a_claim_lasts_while_its_file_exists_and_still_declares_it_or_does_not_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        let hook = "trigger: {webhook: {path: shared}}\nsteps: [{log: ok}]\n";
        write("b-owner.yaml", hook);
        write("a-newcomer.yaml", hook);
        let claims = Claims::new([((ClaimKind::Path, "shared".to_owned()), "b-owner.yaml".to_owned())]);
        let loaded = |claims: &Claims| load_folder_claimed(dir.path(), &Environment::default(), claims).expect("load");

        let set = loaded(&claims);
        assert!(set.get("b-owner").is_some() && set.get("a-newcomer").is_none());
        assert_eq!(set.claims().owner(ClaimKind::Path, "shared"), Some("b-owner.yaml"));
        assert_eq!(set.claims().owner(ClaimKind::Id, "b-owner"), Some("b-owner.yaml"));

        // Broken, the owner keeps what it had.
        write("b-owner.yaml", "trigger: {webhook: {path: shared}}\nstepz: []\n");
        let set = loaded(&claims);
        assert!(set.get("a-newcomer").is_none(), "a broken owner keeps its path");
        // Moved to another path, it lets this one go.
        write(
            "b-owner.yaml",
            "trigger: {webhook: {path: elsewhere}}\nsteps: [{log: ok}]\n",
        );
        let set = loaded(&claims);
        assert!(set.get("a-newcomer").is_some() && set.get("b-owner").is_some());
        assert_eq!(set.claims().owner(ClaimKind::Path, "shared"), Some("a-newcomer.yaml"));
        // Removed, it frees everything.
        write("b-owner.yaml", hook);
        std::fs::remove_file(dir.path().join("b-owner.yaml")).expect("remove");
        let set = loaded(&claims);
        assert_eq!(set.claims().owner(ClaimKind::Path, "shared"), Some("a-newcomer.yaml"));
        assert_eq!(set.claims().owner(ClaimKind::Id, "b-owner"), None);
    }

    #[test]
    fn a_reload_parses_only_the_files_that_changed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hook = |n: usize| format!("trigger: {{webhook: {{}}}}\nsteps: [{{log: 'recipe {n}'}}]\n");
        for n in 0..50 {
            std::fs::write(dir.path().join(format!("r{n:02}.yaml")), hook(n)).expect("write");
        }
        let environment = Environment::default();
        let first = load_folder_claimed(dir.path(), &environment, &Claims::default()).expect("load");
        assert_eq!((first.len(), first.parsed()), (50, 50));
        let again = reload_folder(dir.path(), &environment, &first, &Changed::Everything)
            .expect("reload")
            .set;
        assert_eq!((again.len(), again.parsed()), (50, 0), "nothing changed");
        assert!(Arc::ptr_eq(
            again.get("r07").expect("r07"),
            first.get("r07").expect("r07")
        ));

        std::fs::write(dir.path().join("r07.yaml"), hook(1007)).expect("edit");
        let edited = reload_folder(
            dir.path(),
            &environment,
            &again,
            &Changed::Files([PathBuf::from("r07.yaml")].into()),
        )
        .expect("reload")
        .set;
        assert_eq!((edited.len(), edited.parsed()), (50, 1), "one file changed");
        assert_ne!(
            edited.get("r07").expect("r07").version,
            first.get("r07").expect("r07").version
        );

        // A new file is parsed, and the identity rules still hold for it.
        std::fs::write(
            dir.path().join("a-thief.yaml"),
            "id: r07\ntrigger: {webhook: {path: thief}}\nsteps: [{log: x}]\n",
        )
        .expect("write");
        let added = reload_folder(dir.path(), &environment, &edited, &Changed::Everything)
            .expect("reload")
            .set;
        assert_eq!(added.parsed(), 1);
        assert!(
            added
                .problems()
                .any(|problem| problem.message.contains("belongs to r07.yaml"))
        );
        assert_eq!(added.get("r07").expect("r07").file, dir.path().join("r07.yaml"));
    }
}
