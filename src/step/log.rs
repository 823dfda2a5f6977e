//! The `log` step: a rendered line recorded in the run (and the daemon's log).
//! No network.

/// Writes the line to the daemon's log under the run's id.
pub fn execute(run_id: &str, step_id: &str, line: &str) {
    tracing::info!(run = run_id, step = step_id, "{line}");
}

/// One attempt: the line rendered, recorded and logged.
pub(super) async fn attempt(
    template: &crate::template::Template,
    input: super::AttemptInput<'_>,
    host: &mut impl super::Attempts,
) -> super::Attempted {
    let render = || input.templates.render_text(template, input.context);
    let rendered = if template.has_blocks() {
        host.render_heavy(render).await
    } else {
        render()
    };
    match super::counted(host, rendered) {
        Ok(line) => {
            host.turn(super::Turn::Logged(&line));
            let line = input.redactor.text(&line).into_owned();
            host.log(&line);
            let record = serde_json::json!({"log": line});
            super::Attempted {
                record: crate::json::text(&record),
                outcome: crate::action::Outcome::Succeeded { response: None },
                result: record,
                unstored: None,
            }
        }
        Err(error) => super::Attempted::not_rendered(host, input.redactor, &error),
    }
}
