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

/// A place in a recipe file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    /// The start of the file: for problems of the file as a whole.
    pub const START: Position = Position { line: 1, column: 1 };
}

impl From<Location> for Position {
    fn from(location: Location) -> Self {
        Self {
            line: location.line().max(1),
            column: location.column().max(1),
        }
    }
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, location: Option<Location>, message: impl Into<String>) -> Self {
        Self::at(file, location.map_or(Position::START, Position::from), message)
    }

    pub fn at(file: impl Into<PathBuf>, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: position.line,
            column: position.column,
            message: message.into(),
        }
    }

    /// The message without its hint, and the hint (`did you mean …?`) if any.
    pub fn message_and_hint(&self) -> (&str, Option<&str>) {
        match self.message.split_once("; did you mean ") {
            Some((message, _)) => (message, Some(&self.message[message.len() + 2..])),
            None => (&self.message, None),
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
