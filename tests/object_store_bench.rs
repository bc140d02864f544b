//! The object-storage benchmark (ignored by `cargo test`; `benches/object_store.sh` runs it):
//! train and scan throughput on one dataset read from local files and from the tests' own S3
//! server (in this process, on 127.0.0.1), with 0 ms and 20 ms added to every request and
//! with read-ahead off (`--fetch-ahead-bytes 1`, smaller than any unit) or at its default.
//! It prints one table; it asserts only that every run succeeded (timings are for people).
//!
//! `STREAMFIT_BENCH_ROOT` names a directory holding `bucket/data/*.parquet` (the script
//! generates it); the server serves that directory, so `s3://bucket/data` is the same files.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TIMEOUT, read_json, run_command, tempdir};
use s3::{Faults, SECRET_KEY, Server, s3_server};

/// Rows per second of one command (train's report, or scan's JSON).
fn rows_per_s(server: Option<&Server>, args: &[&str], report: &Path) -> f64 {
    let mut command = match server {
        Some(server) => server.command(args, SECRET_KEY),
        None => {
            let mut command = std::process::Command::new(common::binary());
            command.args(args);
            command
        }
    };
    command.env("STREAMFIT_AVAILABLE_MEMORY_MB", "100000");
    let outcome = run_command(command, TIMEOUT * 10).ok();
    let value = if args[0] == "scan" {
        serde_json::from_str(&outcome.stdout).expect("scan --json")
    } else {
        read_json(report)
    };
    value["rows_per_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rows_per_s in {value}"))
}

#[test]
#[ignore = "a benchmark: run by benches/object_store.sh"]
fn object_store_throughput_table() {
    let root = PathBuf::from(
        std::env::var("STREAMFIT_BENCH_ROOT").expect("STREAMFIT_BENCH_ROOT (see the script)"),
    );
    let local = root.join("bucket/data");
    let local = local.to_str().expect("a UTF-8 path").to_string();
    let epochs = std::env::var("STREAMFIT_BENCH_EPOCHS").unwrap_or_else(|_| "1".to_string());
    let out = tempdir();
    let report = out.path().join("report.json");
    let report_arg = report.to_str().unwrap().to_string();
    let instant = s3_server(&root, Faults::default());
    let slow = s3_server(
        &root,
        Faults {
            fail_every: 0,
            delay: Duration::from_millis(20),
            ..Faults::default()
        },
    );
    println!("| data | added latency | --fetch-ahead-bytes | scan M rows/s | train M rows/s |");
    println!("|---|---|---|---|---|");
    let cases: [(&str, Option<&Server>, &str, &str); 5] = [
        ("local files", None, "-", "67108864"),
        ("s3://", Some(&instant), "0 ms", "1"),
        ("s3://", Some(&instant), "0 ms", "67108864"),
        ("s3://", Some(&slow), "20 ms", "1"),
        ("s3://", Some(&slow), "20 ms", "67108864"),
    ];
    // STREAMFIT_BENCH_DEFAULT_ONLY=1: only the default settings (a large dataset).
    let default_only = std::env::var("STREAMFIT_BENCH_DEFAULT_ONLY").is_ok_and(|v| v == "1");
    for (what, server, latency, budget) in cases {
        if default_only && budget != "67108864" {
            continue;
        }
        let data = match server {
            Some(_) => "s3://bucket/data",
            None => local.as_str(),
        };
        let scan = rows_per_s(
            server,
            &["scan", data, "--json", "--fetch-ahead-bytes", budget],
            &report,
        );
        let train = rows_per_s(
            server,
            &[
                "train",
                data,
                "--quiet",
                "--epochs",
                &epochs,
                "--batch-size",
                "256",
                "--fetch-ahead-bytes",
                budget,
                "--report",
                &report_arg,
            ],
            &report,
        );
        let shown_budget = if server.is_none() { "-" } else { budget };
        println!(
            "| {what} | {latency} | {shown_budget} | {:.2} | {:.2} |",
            scan / 1e6,
            train / 1e6
        );
    }
}

/// How long opening a dataset of many remote files takes: `inspect` (which reads every
/// footer and no data) on 32 small files from the S3 server at 20 ms per request, best of 3.
/// Run with `cargo test --release --test object_store_bench -- --ignored --nocapture
/// opening_many_remote_files`.
#[test]
#[ignore = "a measurement for people"]
fn opening_many_remote_files() {
    let root = tempdir();
    common::dataset(
        &root.path().join("bucket/data"),
        streamfit::generate::Task::Logistic,
        32_000,
        4,
        32,
        1_000,
        3,
    );
    let slow = s3_server(
        root.path(),
        Faults {
            delay: Duration::from_millis(20),
            ..Faults::default()
        },
    );
    let best = (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            let command = slow.command(&["inspect", "s3://bucket/data", "--json"], SECRET_KEY);
            run_command(command, TIMEOUT).ok();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!("inspect of 32 remote files at 20 ms per request: {best:.3} s");
}
