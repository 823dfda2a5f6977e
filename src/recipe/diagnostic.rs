//! A problem found while loading a recipe, with its place in the file.

use std::fmt;
use std::path::PathBuf;

use serde_saphyr::Location;

/// One problem: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: u64,
    /// 1-based.
    pub column: u64,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, location: Option<Location>, message: impl Into<String>) -> Self {
        let (line, column) = location.map_or((1, 1), |location| (location.line().max(1), location.column().max(1)));
        Self {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}
