//! The report counts iterations exactly: ceil(N/b) per epoch.

mod common;

use std::time::Duration;

#[test]
fn report_counts_960_iterations_per_epoch_and_48000_in_total() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::run_ok(&[
        "generate",
        "--rows",
        "245760",
        "--features",
        "2",
        "--shards",
        "3",
        "--row-group-rows",
        "20000",
        "--out",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    let report = dir.path().join("report.json");
    let out = common::run(
        &[
            "train",
            data.to_str().unwrap(),
            "--batch-size",
            "256",
            "--epochs",
            "50",
            "--no-eval",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    )
    .ok();
    assert!(out.stdout.is_empty(), "--quiet prints nothing");
    let report = common::read_json(&report);
    assert_eq!(report["iterations_per_epoch"], 960);
    assert_eq!(report["iterations"], 48_000);
    assert_eq!(report["epochs"], 50);
    assert_eq!(report["rows_per_epoch"], 245_760);
    assert!(
        report.get("full_loss").is_none(),
        "no full-data pass without --full-loss"
    );
    assert!(report["train_loss"].as_f64().is_some_and(f64::is_finite));
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(report["memory_budget_bytes"].as_u64().unwrap() > 0);
}
