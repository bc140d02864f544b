//! Issue 16 (schema drift by a missing column): a feature column named in `--features` that
//! some files of a dataset lack is an error naming those files and `--fill-nulls`; with
//! `--fill-nulls` it reads as null in them, exactly as if those files held the column with
//! every value null. The label missing from a file stays an error. `inspect` shows such a
//! column as "missing in N files".

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array};

use common::{TIMEOUT, read_json, run, run_err, run_ok, tempdir, write_columns};

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A seeded stream of values in [0, 1).
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f64) / ((1u64 << 24) as f64)
        })
        .collect()
}

/// `part-{i}.parquet` files of 200 rows with `x`, `y` (float64) and a 0/1 `label`. In file 1,
/// `y` is left out when `y_in_file_1` is `None`, else written with every value null.
/// (`Some(())` and `None` are the two ways of one file lacking `y`'s values.)
fn drifted(dir: &Path, y_in_file_1: Option<()>) {
    std::fs::create_dir_all(dir).unwrap();
    for file in 0..3u64 {
        let x = values(10 + file, 200);
        let y = values(20 + file, 200);
        let label: Vec<f32> = x
            .iter()
            .zip(&y)
            .map(|(x, y)| f32::from(u8::from(x + 0.5 * y > 0.7)))
            .collect();
        let mut columns: Vec<(&str, ArrayRef)> = vec![("x", Arc::new(Float64Array::from(x)))];
        match (file, y_in_file_1) {
            (1, None) => {}
            (1, Some(())) => columns.push(("y", Arc::new(Float64Array::from(vec![None; 200])))),
            _ => columns.push(("y", Arc::new(Float64Array::from(y)))),
        }
        columns.push(("label", Arc::new(Float32Array::from(label))));
        write_columns(&dir.join(format!("part-{file}.parquet")), columns);
    }
}

/// Trains on `data` with `args`; returns the saved model.
fn train(data: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let model = out.join("model.json");
    let mut all = vec![
        "train",
        "-q",
        s(data),
        "--features",
        "x,y",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--seed",
        "7",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--save-model", s(&model)]);
    run_ok(&all);
    read_json(&model)
}

#[test]
fn a_column_some_files_lack_is_an_error_naming_them_and_fill_nulls() {
    let dir = tempdir();
    let data = dir.path().join("data");
    drifted(&data, None);
    let err = run_err(&["train", "-q", s(&data), "--features", "x,y"], 2);
    assert!(
        err.contains("column `y` is missing from 1 of 3 files")
            && err.contains("part-1.parquet")
            && !err.contains("part-0.parquet")
            && err.contains("--fill-nulls"),
        "{err}"
    );
}

#[test]
fn with_fill_nulls_a_missing_column_trains_like_an_all_null_column_bit_for_bit() {
    let dir = tempdir();
    let (lacking, nulls) = (dir.path().join("lacking"), dir.path().join("nulls"));
    drifted(&lacking, None);
    drifted(&nulls, Some(()));
    for args in [
        &["--fill-nulls", "0"][..],
        &["--fill-nulls", "mean", "--null-indicators"][..],
    ] {
        let out_a = dir.path().join("a");
        let out_b = dir.path().join("b");
        std::fs::create_dir_all(&out_a).unwrap();
        std::fs::create_dir_all(&out_b).unwrap();
        let a = train(&lacking, &out_a, args);
        let b = train(&nulls, &out_b, args);
        assert_eq!(a, b, "{args:?}");
        if args.contains(&"mean") {
            // The mean comes from the files that have `y`: files 0 and 2's values.
            let present: Vec<f64> = [values(20, 200), values(22, 200)].concat();
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            let fill = &a["missing"]["fill"];
            let y = fill
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["column"] == "y")
                .expect("y has a fill value");
            assert!(
                (y["value"].as_f64().unwrap() - mean).abs() < 1e-9,
                "{y} vs {mean}"
            );
            assert_eq!(a["missing"]["indicators"], serde_json::json!(["y"]));
        }
    }
}

#[test]
fn a_column_no_file_has_and_a_missing_label_stay_errors() {
    let dir = tempdir();
    let data = dir.path().join("data");
    drifted(&data, None);
    let err = run_err(
        &[
            "train",
            "-q",
            s(&data),
            "--features",
            "x,z",
            "--fill-nulls",
            "0",
        ],
        2,
    );
    assert!(err.contains("column `z` not found"), "{err}");
    write_columns(
        &data.join("part-3.parquet"),
        vec![
            ("x", Arc::new(Float64Array::from(vec![0.5; 10]))),
            ("y", Arc::new(Float64Array::from(vec![0.5; 10]))),
        ],
    );
    for extra in [&[][..], &["--drop-null-labels"][..]] {
        let mut args = vec!["train", "-q", s(&data), "--features", "x,y"];
        args.extend_from_slice(&["--fill-nulls", "0"]);
        args.extend_from_slice(extra);
        let err = run_err(&args, 2);
        assert!(
            err.contains("part-3.parquet") && err.contains("column `label` not found"),
            "{err}"
        );
    }
}

#[test]
fn inspect_shows_a_column_missing_in_some_files() {
    let dir = tempdir();
    let data = dir.path().join("data");
    drifted(&data, None);
    // `--fill-nulls` is a train flag: inspect prints, then exits 2 with training's error.
    let outcome = run(
        &["inspect", s(&data), "--features", "x,y", "--json"],
        TIMEOUT,
    );
    let stdout = outcome.stdout.clone();
    let err = outcome.fails_with(2);
    assert!(
        err.contains("column `y` is missing from 1 of 3 files"),
        "{err}"
    );
    let found: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let y = found["schema"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "y")
        .expect("y is listed");
    assert_eq!(y["role"], "feature", "{y}");
    assert!(
        y["note"]
            .as_str()
            .unwrap()
            .contains("missing in 1 of 3 files"),
        "{y}"
    );
    assert_eq!(found["num_features"], 2);
}
