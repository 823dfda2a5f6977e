//! `ferry check`: one `file:line:col` diagnostic per problem, and the exit codes of
//! the interface spec.

use std::path::Path;
use std::process::{Command, Output};

fn ferry_check(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_RECIPES")
        .env_remove("MISSING_TOKEN")
        .output()
        .expect("run ferry check")
}

/// Writes each `(file, recipe, expected line)` into one folder, checks it, and
/// looks for each expected diagnostic (exit 1).
fn check_fails_with(cases: &[(&str, &str, &str)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text, _) in cases {
        write(dir.path(), name, text);
    }
    let output = ferry_check(&["."], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for (name, _, expected) in cases {
        assert!(
            stderr.lines().any(|line| line.contains(expected)),
            "{name}: expected a line containing\n  {expected}\nin\n{stderr}"
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write recipe");
}

#[test]
fn broken_recipes_get_one_placed_diagnostic_each_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    write(
        &recipes,
        "a-good.yaml",
        "trigger: {webhook: {path: shared}}\nsteps: [{log: ok}]\n",
    );
    write(&recipes, "b-yaml.yaml", "trigger:\n  webhook: {path: x\nsteps: []\n");
    write(
        &recipes,
        "c-key.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - log: hi\n    retires: 2\n",
    );
    write(
        &recipes,
        "d-template.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - log: '{{#if payload.x}}'\n",
    );
    write(
        &recipes,
        "e-helper.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - log: '{{uper payload.x}}'\n",
    );
    write(
        &recipes,
        "f-duplicate.yaml",
        "trigger:\n  webhook:\n    path: shared\nsteps: [{log: ok}]\n",
    );
    write(
        &recipes,
        "g-env.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: 'https://api.example.com/?t=${MISSING_TOKEN}'\n",
    );

    let output = ferry_check(&[], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout.trim(), "1 recipes, 7 problems", "{stderr}");
    // Each `file:line:col` line is followed by the source around it.
    let lines: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 7, "{stderr}");
    let expected_starts = [
        "error: ./recipes/a-good.yaml:1:27: webhook path `shared` is also claimed by f-duplicate.yaml",
        "error: ./recipes/b-yaml.yaml:3:",
        "error: ./recipes/c-key.yaml:4:5: unknown key `retires` in a step",
        "error: ./recipes/d-template.yaml:3:10: step `step1` `log`: template does not parse",
        "error: ./recipes/e-helper.yaml:3:13: step `step1` `log`: unknown helper `uper`; did you mean `upper`?",
        "error: ./recipes/f-duplicate.yaml:3:11: webhook path `shared` is also claimed by a-good.yaml",
        "error: ./recipes/g-env.yaml:4:12: environment variable `MISSING_TOKEN` is not set",
    ];
    for (line, start) in lines.iter().zip(expected_starts) {
        assert!(line.starts_with(start), "expected `{start}…`, got `{line}`");
    }
}

#[test]
fn json_format_gives_one_object_per_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "typo.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - log: hi\n    tiemout: 5s\n",
    );
    let output = ferry_check(&["typo.yaml", "--format", "json"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines,
        [serde_json::json!({
            "file": "typo.yaml", "line": 4, "col": 5, "severity": "error",
            "message": format!("unknown key `tiemout` in a step; expected one of {}", crate::support::step_keys()),
            "hint": "did you mean `timeout`?",
        })]
    );
}

#[test]
fn exit_codes_for_good_missing_and_empty_paths() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let dir = tempfile::tempdir().expect("temp dir");
    let output = ferry_check(
        &[
            examples.to_str().expect("path"),
            "--env-file",
            examples.join("example.env").to_str().expect("path"),
        ],
        dir.path(),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(" problems\n"));

    let output = ferry_check(&["does-not-exist"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does-not-exist does not exist"));

    let output = ferry_check(&["."], dir.path());
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "0 recipes, 0 problems\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("warning: no recipes found"));
}

#[test]
fn schedule_and_poll_problems_are_placed_and_explained() {
    let cases = [
        (
            "a-cron.yaml",
            "trigger:\n  schedule:\n    cron: '61 * * * *'\nsteps: [{log: ok}]\n",
            "a-cron.yaml:3:11: schedule `cron`: cron `61 * * * *` is not valid",
        ),
        (
            "b-zone.yaml",
            "trigger:\n  schedule:\n    cron: '0 9 * * *'\n    timezone: Europe/Berln\nsteps: [{log: ok}]\n",
            "b-zone.yaml:4:15: schedule `timezone`: `Europe/Berln` is not an IANA time zone (like `UTC`, `Europe/Berlin`, `America/New_York`); did you mean `Europe/Berlin`?",
        ),
        (
            "c-both.yaml",
            "trigger:\n  schedule: {cron: '0 9 * * *', every: 1h}\nsteps: [{log: ok}]\n",
            "c-both.yaml:2:20: schedule has both `cron` and `every`; give one of them",
        ),
        (
            "d-never.yaml",
            "trigger:\n  schedule: {cron: '0 0 31 2 *'}\nsteps: [{log: ok}]\n",
            "d-never.yaml:2:20: schedule `cron`: cron `0 0 31 2 *` never fires",
        ),
        (
            "e-path.yaml",
            "trigger:\n  poll:\n    every: 5m\n    http: {url: 'https://api.weather.gov/alerts/active'}\n    items: '$.features[*'\nsteps: [{log: ok}]\n",
            "e-path.yaml:5:12: poll `items`: `$.features[*` is not an RFC 9535 JSONPath",
        ),
        (
            "f-key.yaml",
            "trigger:\n  poll:\n    every: 5m\n    http: {url: 'https://api.weather.gov/alerts/active'}\n    key: '{{payload.id}}'\nsteps: [{log: ok}]\n",
            "f-key.yaml:5:13: poll `key`: `payload.id` starts with `payload`, which is not in the context; expected one of item",
        ),
        (
            "g-missed.yaml",
            "trigger:\n  schedule: {every: 1h, missed: all}\nsteps: [{log: ok}]\n",
            "g-missed.yaml:2:33: schedule `missed: all` is not known; expected `skip` or `once`",
        ),
        (
            "h-nothing.yaml",
            "trigger:\n  schedule: {timezone: UTC}\nsteps: [{log: ok}]\n",
            "h-nothing.yaml:2:3: schedule needs `cron` (like `0 9 * * MON-FRI`) or `every` (like `15m`)",
        ),
    ];
    check_fails_with(&cases);
}

#[test]
fn verify_problems_are_placed_and_explained() {
    let cases = [
        (
            "a-scheme.yaml",
            "trigger:\n  webhook:\n    verify: {scheme: githb, secret: x}\nsteps: [{log: ok}]\n",
            "a-scheme.yaml:3:22: verify `scheme: githb` is not known; expected one of github, stripe, slack, shopify, standard, hmac, token, basic; did you mean `github`?",
        ),
        (
            "b-missing.yaml",
            "trigger:\n  webhook:\n    verify: {scheme: stripe}\nsteps: [{log: ok}]\n",
            "b-missing.yaml:3:13: verify with `scheme: stripe` needs `secret`",
        ),
        (
            "c-extra.yaml",
            "trigger:\n  webhook:\n    verify: {scheme: github, secret: x, header: x-sig}\nsteps: [{log: ok}]\n",
            "c-extra.yaml:3:49: verify `header` does not apply to `scheme: github`; it takes secret",
        ),
        (
            "d-algorithm.yaml",
            "trigger:\n  webhook:\n    verify: {scheme: hmac, secret: x, header: x-sig, algorithm: md5}\nsteps: [{log: ok}]\n",
            "d-algorithm.yaml:3:65: verify `algorithm: md5` is not known; expected one of sha1, sha256, sha512",
        ),
        (
            "e-standard.yaml",
            "trigger:\n  webhook:\n    verify: {scheme: standard, secret: 'whsec_not base64!'}\nsteps: [{log: ok}]\n",
            "e-standard.yaml:3:40: verify `secret`: a Standard Webhooks secret is base64 (usually after `whsec_`)",
        ),
    ];
    check_fails_with(&cases);
}

#[test]
fn a_host_taken_from_trigger_data_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "callback.yaml",
        "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: 'https://{{payload.host}}/notify'\n",
    );
    let output = ferry_check(&["."], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ./callback.yaml:4:12: step `step1` `url` takes its host from `{{payload.host}}`: whoever sends the trigger chooses where this request goes"),
        "{stderr}"
    );
    let json = ferry_check(&[".", "--format", "json"], dir.path());
    let line: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON line");
    assert_eq!(line["severity"], "warning");
}

#[test]
fn typos_in_a_key_a_helper_and_a_step_reference_are_pointed_at_with_the_intended_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "key.yaml",
        "trigger:\n  webhook: {}\nsteps:\n  - log: hi\n    retries: 3\n",
    );
    write(
        dir.path(),
        "template.yaml",
        "trigger:\n  webhook: {}\nsteps:\n  - id: lookup\n    http:\n      url: 'https://example.com/{{upcase payload.name}}'\n  - id: reply\n    log: '{{steps.lokup.body}}'\n",
    );
    let output = ferry_check(&["."], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // (the `file:line:col` line, the source line shown under it, the caret line's
    // start and length).
    let expected = [
        (
            &*format!(
                "error: ./key.yaml:5:5: unknown key `retries` in a step; expected one of {}; did you mean `retry`?",
                crate::support::step_keys()
            ),
            " 5 │     retries: 3",
            "   ·     ───┬───",
        ),
        (
            "error: ./template.yaml:6:35: step `lookup` `url`: unknown helper `upcase`; did you mean `upper`?",
            " 6 │       url: 'https://example.com/{{upcase payload.name}}'",
            "   ·                                   ───┬──",
        ),
        (
            "error: ./template.yaml:8:13: step `reply` `log`: `steps.lokup.body` names no earlier step `lokup`; the steps before this point are lookup; did you mean `lookup`?",
            " 8 │     log: '{{steps.lokup.body}}'",
            "   ·             ────────┬───────",
        ),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for (diagnostic, source, caret) in expected {
        let at = lines
            .iter()
            .position(|line| *line == diagnostic)
            .unwrap_or_else(|| panic!("expected\n{diagnostic}\nin\n{stderr}"));
        let snippet = &lines[at..(at + 8).min(lines.len())];
        let source_at = snippet
            .iter()
            .position(|line| *line == source)
            .unwrap_or_else(|| panic!("expected the source line `{source}` under\n{}", snippet.join("\n")));
        assert_eq!(snippet[source_at + 1], caret, "{}", snippet.join("\n"));
    }
}
