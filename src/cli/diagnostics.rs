//! Printing diagnostics: the `file:line:col: message` line editors and CI parse,
//! then the source line with a caret under the place (rendered by miette).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use crate::recipe::Diagnostic;

/// Prints diagnostics to stderr, reading each file once.
#[derive(Default)]
pub(super) struct DiagnosticPrinter {
    sources: HashMap<PathBuf, Option<String>>,
}

impl DiagnosticPrinter {
    pub(super) fn print(&mut self, severity: &str, diagnostic: &Diagnostic) {
        eprintln!("{severity}: {diagnostic}");
        let source = self
            .sources
            .entry(diagnostic.file.clone())
            .or_insert_with(|| std::fs::read_to_string(&diagnostic.file).ok());
        if let Some(snippet) = source.as_deref().and_then(|source| snippet(diagnostic, source)) {
            eprint!("{snippet}");
        }
    }
}

/// The lines around the place with the span underlined and the hint (or
/// "here") as its label; `None` when the place is not in `source`.
pub(super) fn snippet(diagnostic: &Diagnostic, source: &str) -> Option<String> {
    let line_start = source
        .split_inclusive('\n')
        .take(usize::try_from(diagnostic.line).ok()?.checked_sub(1)?)
        .map(str::len)
        .sum::<usize>();
    let line = source.get(line_start..)?.lines().next()?;
    let column = usize::try_from(diagnostic.column.saturating_sub(1)).ok()?;
    let start = line.char_indices().nth(column).map(|(byte, _)| byte)?;
    let width = usize::try_from(diagnostic.width.max(1)).ok()?;
    let end = line[start..]
        .char_indices()
        .nth(width)
        .map_or(line.len(), |(byte, _)| start + byte);
    let (_, hint) = diagnostic.message_and_hint();
    let label = hint.unwrap_or("here").to_owned();
    let report = MietteDiagnostic::new(String::new()).with_label(LabeledSpan::at(
        line_start + start..line_start + end.max(start + 1).min(line.len().max(start + 1)),
        label,
    ));
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let report = miette::Report::new(report).with_source_code(NamedSource::new(
        diagnostic.file.display().to_string(),
        source.to_owned(),
    ));
    let mut rendered = String::new();
    GraphicalReportHandler::new_themed(theme)
        .with_context_lines(1)
        .render_report(&mut rendered, report.as_ref())
        .ok()?;
    // The message is on the `file:line:col` line already: keep from the frame on.
    let frame = rendered.find("╭─").or_else(|| rendered.find(",-"))?;
    let frame_line = rendered[..frame].rfind('\n').map_or(0, |newline| newline + 1);
    Some(rendered[frame_line..].to_owned())
}
