//! Issue 15 (real tables), categorical columns: `--categorical` one-hot encodes string,
//! dictionary, boolean and integer columns with vocabularies from one counting pass (the
//! `--max-categories` most frequent values, then `COL=<other>`, then `COL=<null>`), or hashes
//! them with `--hash-buckets` (CRC-32 of `column=value`, checked against a bitwise CRC-32
//! written here). The encoding is saved with the model (version 4), so `predict` on raw files
//! needs no flags; the vocabulary does not depend on `--readers`; bad options are refused with
//! exit code 2. The acceptance table of the issue is in `categorical_table.rs`.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int64Array, StringArray,
};
use streamfit::comm::SingleProcess;
use streamfit::config::TrainConfig;
use streamfit::data::categorical::CategoricalColumns;
use streamfit::pipeline::Shuffle;
use streamfit::run::PreparedRun;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Eight rows: a float `x`, a string `city` (with a null), a dictionary `plan`, an integer
/// `n`, a boolean `flag` and a float label.
fn small_table(path: &Path) {
    let city = StringArray::from(vec![
        Some("Paris"),
        Some("Lyon"),
        Some("Paris"),
        None,
        Some("Nice"),
        Some("Paris"),
        Some("Lyon"),
        Some("Oslo"),
    ]);
    let plan: DictionaryArray<Int32Type> =
        vec!["pro", "free", "free", "pro", "team", "free", "pro", "free"]
            .into_iter()
            .collect();
    common::write_columns(
        path,
        vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![0.5f32, 1., 2., 3., 4., 5., 6., 7.])) as ArrayRef,
            ),
            ("city", Arc::new(city)),
            ("plan", Arc::new(plan)),
            (
                "n",
                Arc::new(Int64Array::from(vec![3, 1, 3, 2, 3, 1, 3, 3])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![
                    true, false, true, true, false, false, true, true,
                ])),
            ),
            (
                "label",
                Arc::new(Float32Array::from(vec![0f32, 1., 0., 1., 0., 1., 0., 1.])),
            ),
        ],
    );
}

/// The feature names and the rows of one unshuffled epoch of `config`'s prepared run.
fn decode(mut config: TrainConfig) -> (Vec<String>, Vec<Vec<f32>>) {
    config.shuffle = Shuffle::Off;
    let run = PreparedRun::new(config, &SingleProcess).unwrap();
    let names = run.source().schema().feature_names.clone();
    let mut rows = Vec::new();
    for batch in run.pipeline().epoch(0).unwrap() {
        let batch = batch.unwrap();
        rows.extend(
            batch
                .rows
                .features()
                .chunks(names.len())
                .map(<[f32]>::to_vec),
        );
    }
    (names, rows)
}

fn config(file: &Path, categorical: CategoricalColumns, max_categories: usize) -> TrainConfig {
    TrainConfig {
        data: vec![file.to_path_buf()],
        categorical,
        max_categories,
        ..TrainConfig::default()
    }
}

#[test]
fn one_hot_features_follow_the_vocabulary_then_other_then_null() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let named =
        |names: &[&str]| CategoricalColumns::Named(names.iter().map(|n| n.to_string()).collect());
    let (names, rows) = decode(config(&file, named(&["city", "plan", "n", "flag"]), 2));
    // city: Paris 3, Lyon 2, Nice 1, Oslo 1, one null; plan: free 4, pro 3, team 1;
    // n: 3 five times, 1 twice, 2 once; flag: true 5, false 3.
    assert_eq!(
        names,
        [
            "x",
            "city=Paris",
            "city=Lyon",
            "city=<other>",
            "city=<null>",
            "plan=free",
            "plan=pro",
            "plan=<other>",
            "n=3",
            "n=1",
            "n=<other>",
            "flag=true",
            "flag=false",
            "flag=<other>",
        ]
    );
    #[rustfmt::skip]
    let expected: [[f32; 14]; 8] = [
        [0.5, 1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0., 0.],
        [1.0, 0., 1., 0., 0., 1., 0., 0., 0., 1., 0., 0., 1., 0.],
        [2.0, 1., 0., 0., 0., 1., 0., 0., 1., 0., 0., 1., 0., 0.],
        [3.0, 0., 0., 0., 1., 0., 1., 0., 0., 0., 1., 1., 0., 0.],
        [4.0, 0., 0., 1., 0., 0., 0., 1., 1., 0., 0., 0., 1., 0.],
        [5.0, 1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 1., 0.],
        [6.0, 0., 1., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0., 0.],
        [7.0, 0., 0., 1., 0., 1., 0., 0., 1., 0., 0., 1., 0., 0.],
    ];
    assert_eq!(rows, expected.map(|r| r.to_vec()));

    // `auto` takes the string and dictionary columns; the integer and boolean stay numbers.
    let (names, rows) = decode(config(&file, CategoricalColumns::Auto, 100));
    assert_eq!(
        names,
        [
            "x",
            "n",
            "flag",
            "city=Paris",
            "city=Lyon",
            "city=Nice",
            "city=Oslo",
            "city=<other>",
            "city=<null>",
            "plan=free",
            "plan=pro",
            "plan=team",
            "plan=<other>",
        ]
    );
    assert_eq!(
        rows[4],
        [4.0, 3.0, 0.0, 0., 0., 1., 0., 0., 0., 0., 0., 1., 0.]
    );
}

/// A bitwise CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`): the reference for the
/// hashed features.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn hashed_features_add_one_at_crc32_of_column_equals_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the standard check value");
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let mut config = config(
        &file,
        CategoricalColumns::Named(vec!["city".into(), "plan".into(), "n".into()]),
        100,
    );
    config.hash_buckets = Some(8);
    let (names, rows) = decode(config);
    let mut expected_names = vec!["x".to_string(), "flag".to_string()];
    expected_names.extend((0..8).map(|i| format!("hash_{i}")));
    assert_eq!(names, expected_names);
    let cities = [
        "Paris", "Lyon", "Paris", "<null>", "Nice", "Paris", "Lyon", "Oslo",
    ];
    let plans = ["pro", "free", "free", "pro", "team", "free", "pro", "free"];
    let ns = [3, 1, 3, 2, 3, 1, 3, 3];
    for (i, row) in rows.iter().enumerate() {
        let mut buckets = [0f32; 8];
        for text in [
            format!("city={}", cities[i]),
            format!("plan={}", plans[i]),
            format!("n={}", ns[i]),
        ] {
            buckets[(crc32(text.as_bytes()) % 8) as usize] += 1.0;
        }
        assert_eq!(&row[2..], &buckets, "row {i}");
    }
}

/// Trains a logistic model on `train` with `args`, saves it, predicts on `test`, and
/// returns the model JSON and the predicted probabilities.
fn train_and_predict(
    dir: &Path,
    train: &Path,
    test: &Path,
    args: &[&str],
) -> (serde_json::Value, Vec<f32>) {
    let model = dir.join("model.json");
    let mut all = vec![
        "train",
        s(train),
        "-q",
        "--model",
        "logistic",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--save-model",
        s(&model),
    ];
    all.extend_from_slice(args);
    common::run_ok(&all);
    let predictions = dir.join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(test),
        "--out",
        s(&predictions),
    ]);
    let batches = common::read_parquet(&predictions);
    (
        common::read_json(&model),
        common::f32_column(&batches, "probability"),
    )
}

fn weights(model: &serde_json::Value) -> (Vec<f64>, f64) {
    let w = model["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    (w, model["bias"].as_f64().unwrap())
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn predict_sends_unseen_values_to_other_and_nulls_to_null() {
    let dir = common::tempdir();
    let train = dir.path().join("train.parquet");
    small_table(&train);
    // Unseen `Berlin`, a null, a known value; a plan never seen.
    let test = dir.path().join("test.parquet");
    common::write_columns(
        &test,
        vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![1f32, 2., 3.])) as ArrayRef,
            ),
            (
                "city",
                Arc::new(StringArray::from(vec![Some("Berlin"), None, Some("Lyon")])),
            ),
            (
                "plan",
                Arc::new(StringArray::from(vec!["free", "gold", "pro"])),
            ),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3]))),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ),
            ("label", Arc::new(Float32Array::from(vec![0f32, 1., 0.]))),
        ],
    );
    let (model, scores) = train_and_predict(
        dir.path(),
        &train,
        &test,
        &["--categorical", "city, plan", "--max-categories", "2"],
    );
    assert_eq!(model["version"], 4);
    assert_eq!(
        model["features"],
        serde_json::json!([
            "x",
            "n",
            "flag",
            "city=Paris",
            "city=Lyon",
            "city=<other>",
            "city=<null>",
            "plan=free",
            "plan=pro",
            "plan=<other>"
        ])
    );
    assert_eq!(
        model["categorical"]["encoding"]["one_hot"][0],
        serde_json::json!({"column": "city", "values": ["Paris", "Lyon"], "null": true})
    );
    let (w, b) = weights(&model);
    #[rustfmt::skip]
    let rows: [[f64; 10]; 3] = [
        [1., 1., 1., 0., 0., 1., 0., 1., 0., 0.],
        [2., 2., 0., 0., 0., 0., 1., 0., 0., 1.],
        [3., 3., 1., 0., 1., 0., 0., 0., 1., 0.],
    ];
    assert_eq!(scores.len(), 3);
    for (row, score) in rows.iter().zip(&scores) {
        let p = sigmoid(row.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b);
        assert!((p - f64::from(*score)).abs() < 1e-5, "{p} vs {score}");
    }
}

/// Three files of two row groups: `id` has 9,000 distinct values (more than the sketch's
/// 4,096 counters) and a few frequent ones; `plan` three values.
fn wide_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let rows_per_file = 6_000;
    for f in 0..3 {
        let ids: Vec<String> = (0..rows_per_file)
            .map(|i| {
                let row = f * rows_per_file + i;
                if row % 3 == 0 {
                    format!("top{}", row % 7)
                } else {
                    format!("id{row}")
                }
            })
            .collect();
        let plans: Vec<&str> = (0..rows_per_file)
            .map(|i| ["free", "pro", "team"][(i * 7 + f) % 3])
            .collect();
        let x: Vec<f64> = (0..rows_per_file).map(|i| (i % 17) as f64 * 0.1).collect();
        let label: Vec<f32> = (0..rows_per_file).map(|i| ((i * 5) % 2) as f32).collect();
        let batch = arrow_array::RecordBatch::try_from_iter(vec![
            ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
            ("id", Arc::new(StringArray::from(ids))),
            ("plan", Arc::new(StringArray::from(plans))),
            ("label", Arc::new(Float32Array::from(label))),
        ])
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(3_000))
            .build();
        common::write_parquet(&dir.join(format!("part-{f}.parquet")), &batch, Some(props));
    }
}

#[test]
fn the_vocabulary_and_the_model_do_not_depend_on_the_reader_count() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    wide_dataset(&data);
    let model = |readers: &str| {
        let path = dir.path().join(format!("model-{readers}.json"));
        let out = common::run_ok(&[
            "train",
            s(&data),
            "--model",
            "logistic",
            "--categorical",
            "auto",
            "--max-categories",
            "8",
            "--readers",
            readers,
            "--batch-size",
            "500",
            "--save-model",
            s(&path),
        ]);
        assert!(
            out.stdout
                .contains("categorical: vocabularies over 18,000 rows"),
            "{}",
            out.stdout
        );
        std::fs::read(path).unwrap()
    };
    let one = model("1");
    assert_eq!(
        one,
        model("3"),
        "model bytes differ between 1 and 3 readers"
    );
    let saved: serde_json::Value = serde_json::from_slice(&one).unwrap();
    let id = &saved["categorical"]["encoding"]["one_hot"][0];
    assert_eq!(id["column"], "id");
    // The seven frequent values (top0..top6: 857 or 858 rows each) come first, by count
    // then by value; the eighth is some id of count 1 or the sketch's estimate.
    let values: Vec<&str> = id["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut top: Vec<&str> = values[..7].to_vec();
    top.sort_unstable();
    assert_eq!(
        top,
        ["top0", "top1", "top2", "top3", "top4", "top5", "top6"]
    );
    assert_eq!(values.len(), 8);
}

#[test]
fn bad_categorical_options_are_refused_with_a_clear_message() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let err = common::run_err(&["train", "-q", s(&file), "--categorical", "town"], 2);
    assert!(
        err.contains("--categorical") && err.contains("`town`") && err.contains("columns: x, city"),
        "{err}"
    );
    let err = common::run_err(
        &[
            "train",
            "-q",
            s(&file),
            "--categorical",
            "city",
            "--hash-buckets",
            "0",
        ],
        2,
    );
    assert!(
        err.contains("--hash-buckets") && err.contains("at least 1"),
        "{err}"
    );
    let err = common::run_err(&["train", "-q", s(&file), "--categorical", "x"], 2);
    assert!(
        err.contains("--categorical") && err.contains("`x` is Float32"),
        "{err}"
    );
    let err = common::run_err(&["train", "-q", s(&file), "--categorical", "label"], 2);
    assert!(err.contains("label column"), "{err}");
    // A shard dataset holds rows already decoded.
    let clean = dir.path().join("clean.parquet");
    common::write_columns(
        &clean,
        vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![1f32, 2.])) as ArrayRef,
            ),
            ("label", Arc::new(Float32Array::from(vec![1f32, 0.]))),
        ],
    );
    let shards = dir.path().join("shards");
    common::to_shards(&clean, &shards, None, 1);
    let err = common::run_err(&["train", "-q", s(&shards), "--categorical", "auto"], 2);
    assert!(
        err.contains("--categorical") && err.contains("shard dataset"),
        "{err}"
    );
}

#[test]
fn a_string_column_left_out_is_named_with_the_flags_that_use_it() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let out = common::run_ok(&["train", s(&file), "--epochs", "1"]);
    // With the distinct values of the first (here the only) row group, estimated.
    assert!(
        out.stdout.contains(
            "city (Utf8, ~4 distinct: pass --categorical city or --hash-buckets to use it)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn resume_refuses_a_changed_vocabulary() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let ck = dir.path().join("ck");
    let train = |k: &str| {
        vec![
            "train".to_string(),
            s(&file).to_string(),
            "-q".into(),
            "--categorical".into(),
            "city".into(),
            "--max-categories".into(),
            k.into(),
            "--epochs".into(),
            "2".into(),
            "--batch-size".into(),
            "4".into(),
            "--checkpoint-dir".into(),
            s(&ck).to_string(),
        ]
    };
    let args = train("2");
    common::run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut resumed = train("3");
    resumed.extend(["--resume".to_string(), "auto".to_string()]);
    let err = common::run_err(&resumed.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(err.contains("--categorical"), "{err}");
    // The same settings refit the same vocabulary, and the run resumes.
    let mut same = train("2");
    same.extend(["--resume".to_string(), "auto".to_string()]);
    common::run_ok(&same.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn plain_and_dictionary_encoded_string_pages_give_the_same_rows() {
    let dir = common::tempdir();
    let dictionary = dir.path().join("dictionary.parquet");
    small_table(&dictionary);
    let plain = dir.path().join("plain.parquet");
    let batches = common::read_parquet(&dictionary);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(3))
        .build();
    common::write_parquet(&plain, &batches[0], Some(props));
    let rows = |file: &Path| decode(config(file, CategoricalColumns::Auto, 3));
    assert_eq!(rows(&dictionary), rows(&plain));
}

#[test]
fn a_hive_partition_key_can_be_one_hot_encoded_and_predict_applies_it() {
    let dir = common::tempdir();
    let data = dir.path().join("tree");
    // region=north twice (500 rows), south once (200), an integer month beside it.
    for (part, rows, month) in [
        ("region=north/month=1/part-0.parquet", 300, 1),
        ("region=north/month=2/part-0.parquet", 200, 2),
        ("region=south/month=3/part-0.parquet", 200, 3),
    ] {
        common::write_hive_part(&data.join(part), rows, month, month as u64, Some(100));
    }
    let model = dir.path().join("model.json");
    let out = common::run_ok(&[
        "train",
        s(&data),
        "--model",
        "logistic",
        "--categorical",
        "region,month",
        "--save-model",
        s(&model),
    ]);
    assert!(
        out.stdout.contains("region 2 values of ~2 distinct")
            && out.stdout.contains("month 3 values of ~3 distinct"),
        "{}",
        out.stdout
    );
    let saved = common::read_json(&model);
    assert_eq!(
        saved["features"],
        serde_json::json!([
            "x",
            "row",
            "region=north",
            "region=south",
            "region=<other>",
            "month=1",
            "month=2",
            "month=3",
            "month=<other>"
        ])
    );
    // predict on a file of an unseen region and month: both go to <other>.
    let unseen = dir.path().join("other/region=east/month=9/part-0.parquet");
    common::write_hive_part(&unseen, 5, 9, 7, None);
    let predictions = dir.path().join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(&dir.path().join("other")),
        "--out",
        s(&predictions),
    ]);
    let scores = common::f32_column(&common::read_parquet(&predictions), "probability");
    let inputs = common::read_parquet(&unseen);
    let x = common::f32_column(&inputs, "x");
    let (w, b) = weights(&saved);
    for (i, score) in scores.iter().enumerate() {
        let z = f64::from(x[i]) * w[0] + i as f64 * w[1] + w[4] + w[8] + b;
        assert!((sigmoid(z) - f64::from(*score)).abs() < 1e-5, "row {i}");
    }
    let err = common::run_err(
        &[
            "train",
            "-q",
            s(&data),
            "--categorical",
            "region",
            "--hash-buckets",
            "4",
        ],
        2,
    );
    assert!(
        err.contains("partition key `region` cannot be hashed"),
        "{err}"
    );
}

#[test]
fn inspect_stats_counts_the_string_columns_distinct_and_frequent_values() {
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    small_table(&file);
    let out = common::run_ok(&["inspect", s(&file), "--stats"]);
    assert!(
        out.stdout
            .contains("city: ~4 distinct, 1 null; most frequent: Paris 3, Lyon 2, Nice 1, Oslo 1")
            && out
                .stdout
                .contains("plan: ~3 distinct, 0 null; most frequent: free 4, pro 3, team 1")
            && out
                .stdout
                .contains("pass --categorical city or --hash-buckets to use it"),
        "{}",
        out.stdout
    );
    let json = common::run_ok(&["inspect", s(&file), "--stats", "--json"]);
    let found: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(found["categories"][0]["column"], "city");
    assert_eq!(found["categories"][0]["distinct"], 4);
}

#[test]
fn a_categorical_column_named_in_features_takes_no_numeric_fill() {
    // `--fill-nulls` fills the numeric features: `city`, named in `--features` and one-hot
    // encoded, is no numeric feature and must not be given a fill value. With named features,
    // `auto` takes the string columns among them only (not `plan`).
    let dir = common::tempdir();
    let file = dir.path().join("t.parquet");
    let model = dir.path().join("m.json");
    small_table(&file);
    common::run_ok(&[
        "train",
        s(&file),
        "--features",
        "x,city",
        "--categorical",
        "auto",
        "--fill-nulls",
        "mean",
        "--epochs",
        "1",
        "--save-model",
        s(&model),
    ]);
    let saved = common::read_json(&model);
    assert_eq!(
        saved["features"],
        serde_json::json!([
            "x",
            "city=Paris",
            "city=Lyon",
            "city=Nice",
            "city=Oslo",
            "city=<other>",
            "city=<null>"
        ]),
    );
}
