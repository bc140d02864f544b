//! `inspect --stats --json` agrees with a direct computation over the same Parquet files, and
//! gives the same statistics for the converted shards.

mod common;

use arrow_array::Float32Array;
use arrow_array::cast::AsArray;
use serde_json::Value;
use streamfit::generate::Task;

/// Column name → every value, read with the parquet crate directly.
fn read_columns(dir: &std::path::Path) -> Vec<(String, Vec<f64>)> {
    let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
    for path in common::parquet_files(dir) {
        for batch in common::read_parquet(&path) {
            for (k, field) in batch.schema().fields().iter().enumerate() {
                if columns.len() <= k {
                    columns.push((field.name().clone(), Vec::new()));
                }
                let values: &Float32Array = batch.column(k).as_primitive();
                columns[k]
                    .1
                    .extend(values.values().iter().map(|&v| f64::from(v)));
            }
        }
    }
    columns
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1e-12)
}

fn inspect_json(data: &std::path::Path) -> Value {
    let out = common::run_ok(&["inspect", data.to_str().unwrap(), "--stats", "--json"]);
    serde_json::from_str(&out.stdout).expect("one JSON object")
}

#[test]
fn inspect_stats_agree_with_a_direct_computation_and_with_the_shards() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Linear, 50_000, 5, 3, 6_000, 17);
    let json = inspect_json(&data);
    assert_eq!(json["rows"], 50_000);
    assert_eq!(json["num_features"], 5);
    assert_eq!(json["label_column"], "label");
    assert_eq!(json["feature_columns"][4], "f4");
    assert_eq!(json["num_units"], 9); // 3 files of 16,667 rows in groups of 6,000
    assert_eq!(json["codecs"][0], "snappy");

    let stats: Vec<&Value> = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&json["label"]))
        .collect();
    let direct = read_columns(&data);
    assert_eq!(stats.len(), direct.len());
    for (s, (name, values)) in stats.iter().zip(&direct) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(s["name"], name.as_str());
        assert_eq!(s["count"], 50_000, "{name}");
        assert_eq!(
            (s["nulls"].as_u64(), s["non_finite"].as_u64()),
            (Some(0), Some(0))
        );
        let got = |k: &str| s[k].as_f64().unwrap();
        assert!(
            close(got("mean"), mean),
            "{name} mean {} vs {mean}",
            got("mean")
        );
        assert!(close(got("std"), std), "{name} std {} vs {std}", got("std"));
        assert_eq!((got("min"), got("max")), (min, max), "{name}");
    }

    let shards = dir.path().join("shards");
    common::run_ok(&[
        "convert",
        data.to_str().unwrap(),
        "--out",
        shards.to_str().unwrap(),
    ]);
    let from_shards = inspect_json(&shards);
    assert_eq!(from_shards["format"], "shards");
    assert_eq!(from_shards["num_units"], 9);
    for (a, b) in json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(from_shards["columns"].as_array().unwrap())
    {
        for k in ["count", "min", "max"] {
            assert_eq!(a[k], b[k]);
        }
        for k in ["mean", "std"] {
            assert!(close(a[k].as_f64().unwrap(), b[k].as_f64().unwrap()));
        }
    }
}

#[test]
fn inspect_without_stats_describes_columns_and_budget() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 2_000, 3, 1, 500, 1);
    let text = common::run_ok(&["inspect", data.to_str().unwrap(), "--features", "f2,f0"]).stdout;
    assert!(text.contains("2,000 rows in 4 row groups"), "{text}");
    assert!(text.contains("memory budget of train"), "{text}");
    let roles: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(name, _)| ["f0", "f1", "f2", "label"].contains(name))
        .collect();
    assert_eq!(
        roles,
        [
            ("f0", "feature"),
            ("f1", "-"),
            ("f2", "feature"),
            ("label", "label")
        ]
    );
}
