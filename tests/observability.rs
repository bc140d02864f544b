//! `--trace` writes a Chrome trace with every named span on the right threads, well nested;
//! the shuffle-quality figure is 1 in file order and near 0 with a buffer holding the dataset.

mod common;

use std::collections::HashMap;

use streamfit::generate::Task;
use streamfit::telemetry::SPAN_NAMES;

/// The thread-name prefix each span must run on.
fn expected_thread(span: &str) -> &'static str {
    match span {
        "read" | "decode" | "blocked" => "reader-",
        "shuffle" | "batch" => "shuffle",
        _ => "main",
    }
}

#[test]
fn the_trace_holds_every_stage_on_its_thread_well_nested() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 2, 2_000, 1);
    let trace = dir.path().join("trace.json");
    let checkpoints = dir.path().join("ckpt");
    common::run_ok(&[
        "train",
        data.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
        // (The full-data pass makes the `eval` spans.)
        "--full-loss",
        "--trace",
        trace.to_str().unwrap(),
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
    ]);
    let trace = common::read_json(&trace);
    let events = trace.as_array().expect("a JSON array of trace events");
    let threads: HashMap<u64, String> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut stacks: HashMap<u64, Vec<String>> = HashMap::new();
    let mut last_ts: HashMap<u64, f64> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "B" || e["ph"] == "E") {
        let tid = e["tid"].as_u64().unwrap();
        let name = e["name"].as_str().unwrap().to_string();
        let ts = e["ts"].as_f64().unwrap();
        assert!(
            ts >= *last_ts.get(&tid).unwrap_or(&0.0),
            "time runs backwards on {tid}"
        );
        last_ts.insert(tid, ts);
        let thread = &threads[&tid];
        assert!(
            thread.starts_with(expected_thread(&name)),
            "span {name} on thread {thread}"
        );
        let stack = stacks.entry(tid).or_default();
        if e["ph"] == "B" {
            stack.push(name.clone());
            *seen.entry(name).or_default() += 1;
        } else {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "unbalanced on {thread}"
            );
        }
    }
    assert!(
        stacks.values().all(Vec::is_empty),
        "spans left open: {stacks:?}"
    );
    for name in SPAN_NAMES {
        assert!(
            seen.get(name).copied().unwrap_or(0) > 0,
            "no `{name}` span in the trace"
        );
    }
}

/// (shuffle ρ, units per step) of the first epoch.
fn mixing(data: &std::path::Path, extra: &[&str]) -> (f64, f64) {
    let report = data.with_extension("report.json");
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--quiet",
        "--no-eval",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::run_ok(&args);
    let report = common::read_json(&report);
    let epoch = &report["epoch_summaries"][0];
    (
        epoch["shuffle_spearman"].as_f64().unwrap(),
        epoch["units_per_step"].as_f64().unwrap(),
    )
}

#[test]
fn shuffle_quality_is_one_in_file_order_and_near_zero_with_a_full_buffer() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 30_000, 3, 3, 1_000, 2);
    let (ordered, ordered_units) = mixing(&data, &["--no-shuffle"]);
    assert!(ordered > 0.999, "file order gave {ordered}");
    let (mixed, mixed_units) = mixing(&data, &["--shuffle-buffer", "30000"]);
    assert!(
        mixed.abs() < 0.05,
        "a buffer holding the dataset gave {mixed}"
    );
    // A 1,000-row buffer over 1,000-row units draws each step from a few units only.
    let (_, few_units) = mixing(&data, &["--shuffle-buffer", "1000"]);
    assert!(
        ordered_units < 1.5,
        "file order: {ordered_units} units per step"
    );
    assert!(
        few_units < mixed_units && mixed_units > 20.0,
        "units per step: small buffer {few_units}, full buffer {mixed_units}"
    );
}
