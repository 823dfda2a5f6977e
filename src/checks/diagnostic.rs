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
    /// 1-based, in characters.
    pub column: u64,
    pub message: String,
    /// How many characters from the column the problem spans (at least 1).
    pub width: u64,
    /// The text the problem is about, when the place is where a whole value
    /// starts (a template) rather than that text: [`Diagnostic::pinpoint`] moves
    /// the place onto it.
    pub culprit: Option<String>,
    /// Where in the culprit the problem is, in characters, and how wide: for a
    /// culprit quoted whole so that it is found (a line of a GraphQL query)
    /// though the problem is one token of it.
    pub within: Option<(u64, u64)>,
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
            width: 1,
            culprit: None,
            within: None,
        }
    }

    /// The same problem, about `culprit` somewhere in the value at its place.
    pub fn about(mut self, culprit: Option<String>) -> Self {
        self.culprit = culprit;
        self
    }

    /// The same problem, about the `width` characters at `offset` of `culprit`
    /// (found in the value at its place as [`Diagnostic::about`] finds it).
    pub fn about_part(mut self, culprit: String, offset: u64, width: u64) -> Self {
        self.culprit = Some(culprit);
        self.within = Some((offset, width.max(1)));
        self
    }

    /// Moves the place onto the culprit when it is found in the value that starts
    /// there (on that line, or on the more indented lines of a block scalar), and
    /// sets the width: the culprit's, or the word at the place.
    pub fn pinpoint(&mut self, source: &str) {
        let lines: Vec<&str> = source.lines().collect();
        let Some(first) = usize::try_from(self.line).ok().and_then(|line| line.checked_sub(1)) else {
            return;
        };
        let Some(start_line) = lines.get(first) else {
            return;
        };
        let start_column = usize::try_from(self.column.saturating_sub(1)).unwrap_or(0);
        if let Some(culprit) = self.culprit.as_deref().filter(|culprit| !culprit.is_empty()) {
            let indent = indentation(start_line);
            // A value that starts its line is a block scalar's text: the lines
            // as indented as it are its text too. Otherwise the value follows
            // its key, and its text goes on only in lines indented further.
            let block_text = start_column == indent;
            let mut candidates = lines
                .iter()
                .enumerate()
                .skip(first)
                .take_while(|(index, line)| {
                    *index == first
                        || line.trim().is_empty()
                        || indentation(line) > indent
                        || (block_text && indentation(line) == indent)
                })
                .map(|(index, line)| {
                    let from = if index == first { start_column } else { 0 };
                    (index, char_offset_to_byte(line, from), *line)
                });
            if let Some((index, column)) = candidates.find_map(|(index, from, line)| {
                let found = line.get(from..)?.find(culprit)?;
                Some((index, line[..from + found].chars().count()))
            }) {
                self.line = index as u64 + 1;
                self.column = column as u64 + 1;
                self.width = culprit.chars().count() as u64;
                if let Some((offset, width)) = self.within {
                    self.column += offset;
                    self.width = width;
                }
                return;
            }
        }
        let word = start_line
            .chars()
            .skip(start_column)
            .take_while(|c| !c.is_whitespace() && !matches!(c, ':' | ',' | '{' | '}' | '[' | ']'))
            .count();
        self.width = word.max(1) as u64;
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

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn char_offset_to_byte(line: &str, chars: usize) -> usize {
    line.char_indices().nth(chars).map_or(line.len(), |(byte, _)| byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinpoint_moves_onto_the_culprit_in_the_value() {
        let source = "steps:\n  - log: \"hi {{upcase payload.a}}\"\n";
        let mut diagnostic =
            Diagnostic::at("r.yaml", Position { line: 2, column: 10 }, "x").about(Some("upcase".into()));
        diagnostic.pinpoint(source);
        assert_eq!((diagnostic.line, diagnostic.column, diagnostic.width), (2, 16, 6));
    }

    #[test]
    fn pinpoint_can_aim_at_a_part_of_the_culprit() {
        let source = "q: |\n  { a }\n  { a }}\n";
        let mut diagnostic =
            Diagnostic::at("r.yaml", Position { line: 1, column: 4 }, "x").about_part("{ a }}".into(), 5, 1);
        diagnostic.pinpoint(source);
        assert_eq!((diagnostic.line, diagnostic.column, diagnostic.width), (3, 8, 1));
        // Placed where a block scalar's text starts, as YAML places it.
        let mut diagnostic =
            Diagnostic::at("r.yaml", Position { line: 2, column: 3 }, "x").about_part("{ a }}".into(), 5, 1);
        diagnostic.pinpoint(source);
        assert_eq!((diagnostic.line, diagnostic.column, diagnostic.width), (3, 8, 1));
    }

    #[test]
    fn pinpoint_follows_a_block_scalar_but_not_the_next_key() {
        let source = "steps:\n  - log: |\n      one\n      {{steps.x}}\n  - log: \"{{nope}}\"\n";
        let mut inside = Diagnostic::at("r.yaml", Position { line: 2, column: 10 }, "x").about(Some("steps.x".into()));
        inside.pinpoint(source);
        assert_eq!((inside.line, inside.column), (4, 9));
        let mut elsewhere = Diagnostic::at("r.yaml", Position { line: 2, column: 10 }, "x").about(Some("nope".into()));
        elsewhere.pinpoint(source);
        assert_eq!(
            (elsewhere.line, elsewhere.column, elsewhere.width),
            (2, 10, 1),
            "stays at the value"
        );
    }

    #[test]
    fn without_a_culprit_the_word_at_the_place_is_underlined() {
        let mut diagnostic = Diagnostic::at("r.yaml", Position { line: 1, column: 3 }, "x");
        diagnostic.pinpoint("  retries: 3\n");
        assert_eq!(diagnostic.width, 7);
    }
}
