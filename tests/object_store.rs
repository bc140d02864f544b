//! Data in object storage (issue 16): an S3 server started in this process on 127.0.0.1
//! (`s3s` over a directory, authentication on) and a plain HTTP file server. A hive tree read
//! from `s3://` trains bit for bit like the same tree on disk (partition keys as features,
//! `--filter`); injected 503s are retried without changing the model; a missing bucket, a
//! missing key and wrong credentials are clear errors (exit 2) that never print the secret;
//! an `http://` file with a query string trains and the query is never shown; `--resume`
//! refuses an object that changed; `inspect`, `predict`, `eval` and `convert` take URLs.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TIMEOUT, read_json, run_command, run_ok, tempdir};
use s3::{Faults, SECRET_KEY, Server, http_server, run_s3, s3_server};

/// One file of the tree (see `common::write_hive_part`), in row groups of 100 rows.
fn write_part(path: &Path, rows: usize, month: i64, seed: u64) {
    common::write_hive_part(path, rows, month, seed, Some(100));
}

/// A hive tree under `root/bucket/data`: year=2023/month={1,2}, year=2024/month={3,4}, 300
/// rows per file in row groups of 100, plus `_SUCCESS` and a hidden file. Returns the tree.
fn hive_tree(root: &Path) -> PathBuf {
    let tree = root.join("bucket/data");
    let parts = [
        ("year=2024/month=4/part-0.parquet", 4),
        ("year=2023/month=2/part-0.parquet", 2),
        ("year=2024/month=3/part-0.parquet", 3),
        ("year=2023/month=1/part-0.parquet", 1),
    ];
    for (i, (rel, month)) in parts.iter().enumerate() {
        write_part(&tree.join(rel), 300, *month, i as u64);
    }
    std::fs::write(tree.join("_SUCCESS"), b"").unwrap();
    std::fs::write(tree.join("year=2023/.part-1.parquet.crc"), b"junk").unwrap();
    tree
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Trains on `data` (with `args`), against `server` when given; returns (model, report).
fn train(
    server: Option<&Server>,
    out: &Path,
    data: &str,
    args: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let model = out.join("model.json");
    let report = out.join("report.json");
    let mut all = vec!["train", "-q", "--epochs", "2", "--batch-size", "64", data];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--save-model", s(&model), "--report", s(&report)]);
    match server {
        Some(server) => {
            run_s3(server, &all).ok();
        }
        None => {
            run_ok(&all);
        }
    }
    let report_text = std::fs::read_to_string(&report).unwrap();
    assert!(!report_text.contains(SECRET_KEY), "{report_text}");
    (read_json(&model), read_json(&report))
}

#[test]
fn a_hive_tree_in_s3_trains_bit_for_bit_like_the_same_tree_on_disk() {
    let root = tempdir();
    let tree = hive_tree(root.path());
    let server = s3_server(root.path(), Faults::default());
    for args in [
        vec!["--features", "x"],
        vec!["--features", "month,x", "--standardize"],
        vec!["--features", "x,year", "--filter", "year>=2024"],
        vec!["--features", "x", "--filter", "year>=2023 and month!=2"],
        // Read-ahead budgets: smaller than one unit's chunks (nothing is read ahead, each
        // reader fetches its own), a few units, and more than the whole dataset.
        vec![
            "--features",
            "x",
            "--fetch-ahead-bytes",
            "100",
            "--readers",
            "3",
        ],
        vec!["--features", "month,x", "--fetch-ahead-bytes", "3000"],
        vec![
            "--features",
            "x",
            "--fetch-ahead-bytes",
            "268435456",
            "--readers",
            "3",
            "--shuffle-buffer",
            "50",
        ],
    ] {
        let (local, dir) = (tempdir(), tempdir());
        let (local_model, local_report) = train(None, local.path(), s(&tree), &args);
        let (remote_model, remote_report) =
            train(Some(&server), dir.path(), "s3://bucket/data", &args);
        assert_eq!(local_model["weights"], remote_model["weights"], "{args:?}");
        assert_eq!(local_model["bias"], remote_model["bias"], "{args:?}");
        assert_eq!(
            local_model["features"], remote_model["features"],
            "{args:?}"
        );
        assert_eq!(
            local_report["rows_per_epoch"], remote_report["rows_per_epoch"],
            "{args:?}"
        );
    }
    // A glob over the bucket selects like one on disk; the report names URLs, never keys.
    let out = tempdir();
    let (_, report) = train(
        Some(&server),
        out.path(),
        "s3://bucket/data/year=2024/**/*.parquet",
        &["--features", "x"],
    );
    assert_eq!(report["rows_per_epoch"], 600, "{report}");
}

#[test]
fn injected_failures_are_retried_and_the_model_is_identical() {
    let root = tempdir();
    hive_tree(root.path());
    let clean = s3_server(root.path(), Faults::default());
    let flaky = s3_server(
        root.path(),
        Faults {
            fail_every: 3,
            delay: Duration::from_millis(2),
            ..Faults::default()
        },
    );
    let args = ["--features", "month,x", "--io-retries", "5"];
    let (a, b) = (tempdir(), tempdir());
    let (clean_model, _) = train(Some(&clean), a.path(), "s3://bucket/data", &args);
    let (flaky_model, _) = train(Some(&flaky), b.path(), "s3://bucket/data", &args);
    assert_eq!(clean_model["weights"], flaky_model["weights"]);
    assert_eq!(clean_model["bias"], flaky_model["bias"]);
    // Every third request failed, so the flaky run made more requests than it needed.
    let requests = flaky.requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(requests >= 3, "{requests} requests");
    // With no retries the first injected failure is an error naming the object and status.
    let flaky = s3_server(
        root.path(),
        Faults {
            fail_every: 1,
            delay: Duration::ZERO,
            ..Faults::default()
        },
    );
    let err = run_s3(
        &flaky,
        &["train", "-q", "s3://bucket/data", "--io-retries", "0"],
    )
    .fails_with(2);
    assert!(err.contains("s3://bucket/data"), "{err}");
    assert!(err.contains("503"), "{err}");
}

#[test]
fn a_missing_bucket_a_missing_key_and_wrong_credentials_are_clear_errors() {
    let root = tempdir();
    hive_tree(root.path());
    let server = s3_server(root.path(), Faults::default());
    let err = run_s3(&server, &["train", "-q", "s3://no-such-bucket/data"]).fails_with(2);
    assert!(err.contains("s3://no-such-bucket/data"), "{err}");
    assert!(err.contains("404") && err.contains("NoSuchBucket"), "{err}");
    assert!(err.contains("the bucket does not exist"), "{err}");

    let err = run_s3(
        &server,
        &["train", "-q", "s3://bucket/data/year=2030/part-0.parquet"],
    )
    .fails_with(2);
    assert!(
        err.contains("no object s3://bucket/data/year=2030/part-0.parquet"),
        "{err}"
    );

    let wrong = "wrong-secret-Not-Printed-123";
    let outcome = run_command(
        server.command(&["train", "-q", "s3://bucket/data"], wrong),
        TIMEOUT,
    );
    assert!(!outcome.stderr.contains(wrong), "{}", outcome.stderr);
    let err = outcome.fails_with(2);
    assert!(err.contains("s3://bucket/data"), "{err}");
    assert!(
        err.contains("403") && err.contains("access denied"),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY), "{err}");
}

#[test]
fn a_plain_http_file_trains_and_its_query_string_is_never_shown() {
    let dir = tempdir();
    let file = dir.path().join("part-0.parquet");
    write_part(&file, 300, 2, 9);
    let server = http_server(dir.path());
    let url = format!(
        "{}/part-0.parquet?X-Amz-Signature=SECRETSIG",
        server.endpoint()
    );
    let (local, remote) = (tempdir(), tempdir());
    let (local_model, _) = train(None, local.path(), s(&file), &["--features", "x"]);
    let (remote_model, remote_report) = train(None, remote.path(), &url, &["--features", "x"]);
    assert_eq!(local_model["weights"], remote_model["weights"]);
    assert_eq!(local_model["bias"], remote_model["bias"]);
    for written in ["model.json", "report.json"] {
        let text = std::fs::read_to_string(remote.path().join(written)).unwrap();
        assert!(!text.contains("SECRETSIG"), "{written}: {text}");
    }
    assert_eq!(remote_report["rows_per_epoch"], 300);
    // A missing file names the URL without its query.
    let missing = format!("{}/nothing.parquet?sig=SECRETSIG", server.endpoint());
    let err = common::run_err(&["train", "-q", &missing], 2);
    assert!(!err.contains("SECRETSIG"), "{err}");
    assert!(
        err.contains(&format!("{}/nothing.parquet", server.endpoint())) && err.contains("404"),
        "{err}"
    );
    // inspect and predict read it too.
    let shown = run_ok(&["inspect", &url]).stdout;
    assert!(shown.contains("300"), "{shown}");
    assert!(!shown.contains("SECRETSIG"), "{shown}");
    let predictions = remote.path().join("p.parquet");
    run_ok(&[
        "predict",
        "-q",
        "--model",
        s(&remote.path().join("model.json")),
        &url,
        "--out",
        s(&predictions),
    ]);
    assert!(predictions.is_file());
}

#[test]
fn inspect_eval_and_convert_take_s3_urls() {
    let root = tempdir();
    let tree = hive_tree(root.path());
    let server = s3_server(root.path(), Faults::default());
    let shown = run_s3(&server, &["inspect", "s3://bucket/data"])
        .ok()
        .stdout;
    assert!(shown.contains("month"), "{shown}");
    assert!(shown.contains("1,200") || shown.contains("1200"), "{shown}");
    let out = tempdir();
    let (_, _) = train(None, out.path(), s(&tree), &["--features", "x"]);
    let model = out.path().join("model.json");
    let remote = run_s3(
        &server,
        &["eval", "--json", "--model", s(&model), "s3://bucket/data"],
    )
    .ok()
    .stdout;
    let local = run_ok(&["eval", "--json", "--model", s(&model), s(&tree)]).stdout;
    assert_eq!(remote, local);
    let shards = out.path().join("shards");
    run_s3(
        &server,
        &["convert", "s3://bucket/data", "--out", s(&shards)],
    )
    .ok();
    assert!(shards.join("manifest.json").is_file());
}

#[test]
fn resume_refuses_a_remote_object_that_changed() {
    let root = tempdir();
    let tree = hive_tree(root.path());
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let checkpoints = out.path().join("ck");
    let args = |epochs: &'static str| {
        vec![
            "train".to_string(),
            "-q".to_string(),
            "s3://bucket/data".to_string(),
            "--features".to_string(),
            "x".to_string(),
            "--batch-size".to_string(),
            "64".to_string(),
            "--epochs".to_string(),
            epochs.to_string(),
            "--checkpoint-dir".to_string(),
            s(&checkpoints).to_string(),
            "--resume".to_string(),
            "auto".to_string(),
        ]
    };
    let first = args("1");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    run_s3(&server, &first).ok();
    let text: String = std::fs::read_dir(&checkpoints)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(!text.contains(SECRET_KEY));
    // Same size, other bytes: only the ETag (and the footer) tell.
    write_part(&tree.join("year=2024/month=3/part-0.parquet"), 300, 3, 77);
    let second = args("2");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let err = run_s3(&server, &second).fails_with(2);
    assert!(err.contains("changed"), "{err}");
}
