//! Recipe identity: which file owns each recipe id and webhook path.
//!
//! The first file to claim an id or a path keeps it: a file added later that
//! declares a taken one fails to load, and the owner serves on. The daemon keeps
//! the claims in its database, so "first" survives restarts and does not depend
//! on file names (`aaa-steal.yaml` sorts before `good.yaml` but came later).
//! Among files that claim something nobody owns yet, file-name order decides.
//! A claim lasts while its file exists and either still declares it or does not
//! load at all (a broken file keeps what it had); removing the file frees it.

use std::collections::BTreeMap;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims(BTreeMap<ClaimKey, String>);

impl Claims {
    pub fn new(owners: impl IntoIterator<Item = (ClaimKey, String)>) -> Self {
        Self(owners.into_iter().collect())
    }

    /// The file that owns a name, if any.
    pub fn owner(&self, kind: ClaimKind, name: &str) -> Option<&str> {
        self.0.get(&(kind, name.to_owned())).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ClaimKey, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn insert(&mut self, key: ClaimKey, file: String) {
        self.0.insert(key, file);
    }

    /// The claims that still stand for the files of a fresh load: a file's claim
    /// lasts while the file exists and still declares the name, or did not load.
    pub(super) fn standing(&self, still_claims: impl Fn(&str, &ClaimKey) -> bool) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(key, file)| still_claims(file, key))
                .map(|(key, file)| (key.clone(), file.clone()))
                .collect(),
        )
    }
}

/// A file's name as claims record it.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
