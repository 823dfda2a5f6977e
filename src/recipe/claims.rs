//! Recipe identity: which file owns each recipe id and webhook path.
//!
//! The first file to claim an id or a path keeps it: a file added later that
//! declares a taken one fails to load, and the owner serves on. The daemon keeps
//! the claims in its database, so "first" survives restarts and does not depend
//! on file names (`aaa-steal.yaml` sorts before `good.yaml` but came later).
//! Among files that claim something nobody owns yet, file-name order decides.
//! A claim lasts while its file exists and either still declares it or does not
//! load at all (a broken file keeps what it had); removing the file frees it.

use std::path::Path;

/// What a file can claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimKind {
    /// A recipe id.
    Id,
    /// A webhook path.
    Path,
}

impl ClaimKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Id => "id",
            ClaimKind::Path => "path",
        }
    }

    /// The stored name back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "id" => Some(ClaimKind::Id),
            "path" => Some(ClaimKind::Path),
            _ => None,
        }
    }

    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            ClaimKind::Id => "recipe id",
            ClaimKind::Path => "webhook path",
        }
    }
}

/// One claimed name: `(kind, name)`.
pub type ClaimKey = (ClaimKind, String);

/// Who owns each id and path: the owner's file name in the recipes folder.
///
/// Persistent maps: a reload copies the claims in O(1) and changes what one
/// file claims in O(log n), so touching one file of 10 000 costs what one
/// file costs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    owners: imbl::OrdMap<ClaimKey, String>,
    /// The same, by file: what each file owns (one id, at most one path).
    by_file: imbl::OrdMap<String, Vec<ClaimKey>>,
}

impl Claims {
    pub fn new(owners: impl IntoIterator<Item = (ClaimKey, String)>) -> Self {
        let mut claims = Self::default();
        for (key, file) in owners {
            claims.insert(key, file);
        }
        claims
    }

    /// The file that owns a name, if any.
    pub fn owner(&self, kind: ClaimKind, name: &str) -> Option<&str> {
        self.owners.get(&(kind, name.to_owned())).map(String::as_str)
    }

    /// What a file owns.
    pub fn of_file(&self, file: &str) -> &[ClaimKey] {
        self.by_file.get(file).map(Vec::as_slice).unwrap_or_default()
    }

    /// The files that own something.
    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.by_file.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ClaimKey, &String)> {
        self.owners.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    pub(super) fn insert(&mut self, key: ClaimKey, file: String) {
        if let Some(before) = self.owners.insert(key.clone(), file.clone()) {
            self.forget_owner(&before, &key);
        }
        self.by_file.entry(file).or_default().push(key);
    }

    pub(super) fn remove(&mut self, key: &ClaimKey) {
        if let Some(file) = self.owners.remove(key) {
            self.forget_owner(&file, key);
        }
    }

    fn forget_owner(&mut self, file: &str, key: &ClaimKey) {
        if let Some(keys) = self.by_file.get_mut(file) {
            keys.retain(|owned| owned != key);
            if keys.is_empty() {
                self.by_file.remove(file);
            }
        }
    }
}

/// How a load changed the claims: what to store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimChanges {
    /// Names newly owned, with their owner file.
    pub taken: Vec<(ClaimKey, String)>,
    /// Names nobody owns any more.
    pub freed: Vec<ClaimKey>,
}

impl ClaimChanges {
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.freed.is_empty()
    }
}

/// A file's name as claims record it.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
