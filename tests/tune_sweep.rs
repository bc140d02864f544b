//! `tune`'s prefetch/readers sweep repeats every setting and reports the spread, says so when
//! the settings make no measurable difference (and then keeps the default `--prefetch` and
//! `--readers`), and its gradient-variance table measures batches of disjoint rows against
//! the finite-population prediction (1 − b/n)·tr(Σ)/b.

mod common;

use serde_json::Value;
use streamfit::generate::Task;

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn sweep_json_has_each_settings_repeats_median_min_and_max() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 1, 5_000, 5);
    let out = common::run_ok(&[
        "tune",
        data.to_str().unwrap(),
        "--budget-seconds",
        "2",
        "--batch-sizes",
        "16,64,256",
        "--prefetch-depths",
        "0,2",
        "--readers-list",
        "1",
        "--repeats",
        "3",
        "--json",
    ]);
    let result: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(result["repeats"], 3, "{result}");
    let runs = result["prefetch"].as_array().expect("the settings");
    assert_eq!(runs.len(), 2, "{result}");
    for run in runs {
        let repeats: Vec<f64> = run["rows_per_s_repeats"]
            .as_array()
            .expect("each repeat's rows/s")
            .iter()
            .map(num)
            .collect();
        assert_eq!(repeats.len(), 3, "{run}");
        let mut sorted = repeats.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(sorted[0] > 0.0, "{run}");
        assert_eq!(num(&run["min_rows_per_s"]), sorted[0], "{run}");
        assert_eq!(num(&run["median_rows_per_s"]), sorted[1], "{run}");
        assert_eq!(num(&run["max_rows_per_s"]), sorted[2], "{run}");
        assert!((0.0..=1.0).contains(&num(&run["stall_fraction"])), "{run}");
    }
    // The progress lines interleave the repeats: round 1 runs both settings before round 2.
    let repeats: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("tune: pipeline "))
        .map(|l| {
            l.split(", repeat ")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(repeats, ["1", "1", "2", "2", "3", "3"], "{}", out.stderr);
    // The verdict decides whether the command sets the pipeline flags.
    let command = result["command"].as_str().unwrap();
    match result["sweep_verdict"].as_str().unwrap() {
        "measurable" => assert!(command.contains("--prefetch "), "{command}"),
        "no_measurable_difference" => {
            assert!(!command.contains("--prefetch"), "{command}");
            assert_eq!(result["recommended_prefetch"], 4, "the default");
            assert_eq!(result["recommended_readers"], 2, "the default");
        }
        other => panic!("verdict {other}"),
    }
    // The variance of batches of disjoint rows is the finite-population prediction, up to the
    // sampling error of 200 batches.
    let variance = result["noise"]["variance"].as_array().unwrap();
    assert!(variance.len() >= 3, "{variance:?}");
    for point in variance {
        let ratio = num(&point["without_replacement"]) / num(&point["predicted"]);
        assert!((0.7..1.3).contains(&ratio), "{point}");
        assert!(num(&point["with_replacement"]) > 0.0, "{point}");
    }
    assert_eq!(result["dataset_rows"], 20_000);
}

#[test]
fn a_sweep_without_a_measurable_difference_keeps_the_default_pipeline_flags() {
    // One setting compares nothing: the verdict is "no measurable difference" whatever the
    // timings, so the command keeps train's defaults.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 1, 5_000, 6);
    let out = common::run_ok(&[
        "tune",
        data.to_str().unwrap(),
        "--budget-seconds",
        "1",
        "--batch-sizes",
        "16,64",
        "--prefetch-depths",
        "1",
        "--readers-list",
        "1",
        "--repeats",
        "2",
        "--quiet",
    ]);
    assert!(
        out.stdout.contains(
            "no measurable difference: no setting's min–max spread lies wholly below the best's; \
             keeping the defaults (prefetch 4, readers 2)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(", 2 repeats each, interleaved):"),
        "{}",
        out.stdout
    );
    let command = out.stdout.lines().last().unwrap();
    assert!(command.starts_with("streamfit train "), "{command}");
    assert!(command.contains("--batch-size "), "{command}");
    assert!(
        !command.contains("--prefetch")
            && !command.contains("--readers")
            && !command.contains("--repeats"),
        "{command}"
    );
    // Run as printed, it trains.
    let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
    args.extend(["--epochs", "1", "--quiet"]);
    common::run_ok(&args);
}
