//! `cargo bench --bench reload`: what a hot reload costs when one file of many
//! changes. Loads a folder of N webhook recipes, then edits one file and times
//! `reload_folder` (the daemon's reload), for N = 10 and N = 10 000
//! (`RELOAD_LARGE` to change it), several rounds each; prints the medians and
//! their ratio. A reload reads the folder and one `stat` per file, and parses
//! only what changed, so the ratio stays small.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry::recipe::{Claims, Environment, load_folder_claimed, reload_folder};

fn recipe(n: usize, word: &str) -> String {
    format!(
        "trigger:\n  webhook: {{path: hook-{n}}}\nsteps:\n  - http:\n      url: 'http://127.0.0.1:9/{{{{payload.id}}}}'\n      json: {{text: '{word} {{{{payload.name}}}}', n: {n}}}\n"
    )
}

/// Median time to reload `files` recipes after one of them changed.
fn reload_after_one_edit(folder: &Path, files: usize, rounds: usize) -> (Duration, usize) {
    for n in 0..files {
        std::fs::write(folder.join(format!("r{n:05}.yaml")), recipe(n, "hello")).expect("write recipe");
    }
    let environment = Environment::default();
    let mut set = load_folder_claimed(folder, &environment, &Claims::default()).expect("first load");
    assert_eq!(set.len(), files);
    let mut times = Vec::with_capacity(rounds);
    let mut parsed = 0;
    for round in 0..rounds {
        let edited = folder.join(format!("r{:05}.yaml", round % files));
        std::fs::write(&edited, recipe(round % files, &format!("round {round}"))).expect("edit");
        let started = Instant::now();
        set = reload_folder(folder, &environment, &set).expect("reload");
        times.push(started.elapsed());
        parsed = parsed.max(set.parsed());
        assert_eq!(set.len(), files);
    }
    times.sort();
    (times[times.len() / 2], parsed)
}

fn main() {
    let large: usize = std::env::var("RELOAD_LARGE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let rounds = 9;
    let small_dir = tempfile::tempdir().expect("temp dir");
    let large_dir = tempfile::tempdir().expect("temp dir");
    let (small, small_parsed) = reload_after_one_edit(small_dir.path(), 10, rounds);
    let (large_time, large_parsed) = reload_after_one_edit(large_dir.path(), large, rounds);
    println!("| recipes | reload after one edit (median of {rounds}) | files parsed |");
    println!("|---|---|---|");
    println!("| 10 | {:.2} ms | {small_parsed} |", small.as_secs_f64() * 1000.0);
    println!(
        "| {large} | {:.2} ms | {large_parsed} |",
        large_time.as_secs_f64() * 1000.0
    );
    println!(
        "ratio {:.1} (reload of 1 in {large} / reload of 1 in 10)",
        large_time.as_secs_f64() / small.as_secs_f64()
    );
}
