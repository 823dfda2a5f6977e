//! `cargo bench --bench reload`: what a hot reload costs when one file of many
//! changes. Loads a folder of N webhook recipes, then edits one file and times
//! `reload_folder` with the path the folder watcher reports (the daemon's
//! reload), for N = 10 and N = 10 000 (`RELOAD_LARGE` to change it), several
//! rounds each (`RELOAD_ROUNDS`, default 101); prints the medians and their ratio. A reload stats and parses
//! the changed file only and changes the set in O(log n), so the ratio stays
//! small. The full rescan (after the watcher lost events) is timed beside it.

// Tests and benchmarks stop at the first thing that is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use ferry::recipe::{Changed, Claims, Environment, load_folder_claimed, reload_folder};

fn recipe(n: usize, word: &str) -> String {
    format!(
        "trigger:\n  webhook: {{path: hook-{n}}}\nsteps:\n  - http:\n      url: 'http://127.0.0.1:9/{{{{payload.id}}}}'\n      json: {{text: '{word} {{{{payload.name}}}}', n: {n}}}\n"
    )
}

/// Median times to reload `files` recipes after one of them changed: with the
/// changed path, and by rescanning the folder.
fn reload_after_one_edit(folder: &Path, files: usize, rounds: usize) -> (Duration, Duration, usize) {
    for n in 0..files {
        std::fs::write(folder.join(format!("r{n:05}.yaml")), recipe(n, "hello")).expect("write recipe");
    }
    let environment = Environment::default();
    let mut set = load_folder_claimed(folder, &environment, &Claims::default()).expect("first load");
    assert_eq!(set.len(), files);
    let (mut times, mut rescans) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let mut parsed = 0;
    for round in 0..rounds {
        let edited = folder.join(format!("r{:05}.yaml", round % files));
        std::fs::write(&edited, recipe(round % files, &format!("round {round}"))).expect("edit");
        let started = Instant::now();
        let changed = Changed::Files([edited.clone()].into());
        set = reload_folder(folder, &environment, &set, &changed).expect("reload").set;
        times.push(started.elapsed());
        parsed = parsed.max(set.parsed());
        assert_eq!(set.len(), files);

        if round >= RESCANS {
            continue;
        }
        std::fs::write(&edited, recipe(round % files, &format!("again {round}"))).expect("edit");
        let started = Instant::now();
        set = reload_folder(folder, &environment, &set, &Changed::Everything)
            .expect("rescan")
            .set;
        rescans.push(started.elapsed());
        assert_eq!((set.len(), set.parsed()), (files, 1));
    }
    times.sort();
    rescans.sort();
    (times[times.len() / 2], rescans[rescans.len() / 2], parsed)
}

/// Rounds that also time a full rescan (the rest time the watcher's reload
/// only: the first rounds after a load of 10 000 files run cold, so the median
/// needs many).
const RESCANS: usize = 9;

fn main() {
    let large: usize = std::env::var("RELOAD_LARGE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("RELOAD_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(101);
    let small_dir = tempfile::tempdir().expect("temp dir");
    let large_dir = tempfile::tempdir().expect("temp dir");
    let (small, small_rescan, small_parsed) = reload_after_one_edit(small_dir.path(), 10, rounds);
    let (large_time, large_rescan, large_parsed) = reload_after_one_edit(large_dir.path(), large, rounds);
    let ms = |time: Duration| time.as_secs_f64() * 1000.0;
    println!("| recipes | reload after one edit (median of {rounds}) | files parsed | full rescan |");
    println!("|---|---|---|---|");
    println!(
        "| 10 | {:.3} ms | {small_parsed} | {:.3} ms |",
        ms(small),
        ms(small_rescan)
    );
    println!(
        "| {large} | {:.3} ms | {large_parsed} | {:.3} ms |",
        ms(large_time),
        ms(large_rescan)
    );
    println!(
        "ratio {:.1} (reload of 1 in {large} / reload of 1 in 10)",
        large_time.as_secs_f64() / small.as_secs_f64()
    );
}
