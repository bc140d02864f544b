//! `predict` and `eval`: one prediction per input row in input order, passed-through columns,
//! unlabelled input, a model whose features are missing, and `eval` equal to the trainer's own
//! validation numbers.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use common::{f32_column, read_parquet};
use streamfit::data::source::write::{Compression, ParquetWriter};
use streamfit::generate::Task;
use streamfit::train::ModelFile;

#[test]
fn predict_writes_one_row_per_input_row_in_input_order_with_kept_columns() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 30_000, 5, 3, 4_000, 4);
    let model = dir.path().join("model.json");
    let preds = dir.path().join("preds.parquet");
    let d = data.to_str().unwrap();
    common::run_ok(&[
        "train",
        d,
        "-q",
        "--epochs",
        "1",
        "--save-model",
        model.to_str().unwrap(),
    ]);
    common::run_ok(&[
        "predict",
        "-q",
        "--model",
        model.to_str().unwrap(),
        d,
        "--out",
        preds.to_str().unwrap(),
        "--keep",
        "f3,label",
    ]);
    let out = read_parquet(&preds);
    let names: Vec<String> = out[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["probability", "class", "f3", "label"]);
    // The input in file order (files sorted by name, row groups in order).
    let input: Vec<RecordBatch> = common::parquet_files(&data)
        .iter()
        .flat_map(|f| read_parquet(f))
        .collect();
    let probability = f32_column(&out, "probability");
    assert_eq!(probability.len(), 30_000);
    assert_eq!(f32_column(&out, "f3"), f32_column(&input, "f3"));
    assert_eq!(f32_column(&out, "label"), f32_column(&input, "label"));
    // Each prediction is the saved model applied to that input row.
    let saved = ModelFile::load(&model).unwrap();
    let columns: Vec<Vec<f32>> = (0..5)
        .map(|j| f32_column(&input, &format!("f{j}")))
        .collect();
    let classes: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            b.column_by_name("class")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    for (i, (&p, &c)) in probability.iter().zip(&classes).enumerate() {
        let z: f64 = (0..5)
            .map(|j| f64::from(saved.weights[j]) * f64::from(columns[j][i]))
            .sum::<f64>()
            + f64::from(saved.bias.unwrap());
        let expected = 1.0 / (1.0 + (-z).exp());
        assert!(
            (f64::from(p) - expected).abs() < 1e-5,
            "row {i}: {p} vs {expected}"
        );
        assert_eq!(c, i64::from(p >= 0.5), "row {i}");
    }
}

#[test]
fn predict_reads_unlabelled_data_and_refuses_a_model_whose_features_are_missing() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Linear, 2_000, 3, 1, 1_000, 2);
    let model = dir.path().join("model.json");
    common::run_ok(&[
        "train",
        data.to_str().unwrap(),
        "-q",
        "--model",
        "linear",
        "--save-model",
        model.to_str().unwrap(),
    ]);
    // Unlabelled rows: the same features, no `label` column (`y` instead).
    let unlabelled = dir.path().join("unlabelled.parquet");
    let names: Vec<String> = (0..3).map(|j| format!("f{j}")).collect();
    let mut writer =
        ParquetWriter::create(&unlabelled, &names, "y", Compression::None, 1_000).unwrap();
    writer
        .write_columns(
            vec![vec![1.0, 0.0], vec![2.0, 0.0], vec![3.0, 0.0]],
            vec![9.0, 9.0],
        )
        .unwrap();
    writer.finish().unwrap();
    let preds = dir.path().join("preds.parquet");
    let m = model.to_str().unwrap();
    common::run_ok(&[
        "predict",
        "-q",
        "--model",
        m,
        unlabelled.to_str().unwrap(),
        "--out",
        preds.to_str().unwrap(),
    ]);
    let saved = ModelFile::load(&model).unwrap();
    let values = f32_column(&read_parquet(&preds), "prediction");
    let w = &saved.weights;
    let expected = w[0] + 2.0 * w[1] + 3.0 * w[2] + saved.bias.unwrap();
    assert!((values[0] - expected).abs() < 1e-5);
    assert!((values[1] - saved.bias.unwrap()).abs() < 1e-6);

    // `eval` needs the label; a file without the model's features is refused by name.
    let stderr = common::run_err(&["eval", "--model", m, unlabelled.to_str().unwrap()], 2);
    assert!(stderr.contains("column `label` not found"), "{stderr}");
    let other = dir.path().join("other.parquet");
    let names: Vec<String> = vec!["f0".into(), "g1".into()];
    let mut writer = ParquetWriter::create(&other, &names, "label", Compression::None, 10).unwrap();
    writer
        .write_columns(vec![vec![1.0], vec![2.0]], vec![0.0])
        .unwrap();
    writer.finish().unwrap();
    let refused = dir.path().join("refused.parquet");
    let stderr = common::run_err(
        &[
            "predict",
            "--model",
            m,
            other.to_str().unwrap(),
            "--out",
            refused.to_str().unwrap(),
        ],
        2,
    );
    assert!(stderr.contains("column `f1` not found"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    assert!(!refused.exists(), "no output on error");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp")
            })
            .count(),
        0,
        "no temporary file left"
    );
}

#[test]
fn eval_matches_the_trainers_validation_numbers() {
    let dir = common::tempdir();
    let (train, valid) = (dir.path().join("train"), dir.path().join("valid"));
    common::dataset(&train, Task::Multiclass, 20_000, 6, 2, 4_000, 1);
    common::dataset(&valid, Task::Multiclass, 5_000, 6, 1, 4_000, 1);
    let (model, report) = (
        dir.path().join("model.json"),
        dir.path().join("report.json"),
    );
    for args in [
        vec!["--model", "softmax", "--classes", "10", "--lr", "0.5"],
        vec![
            "--model",
            "mlp",
            "--hidden",
            "16",
            "--task",
            "multiclass",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
        ],
    ] {
        let mut train_args = vec![
            "train",
            train.to_str().unwrap(),
            "-q",
            "--epochs",
            "2",
            "--valid",
            valid.to_str().unwrap(),
            "--save-model",
            model.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        train_args.extend_from_slice(&args);
        common::run_ok(&train_args);
        let report = common::read_json(&report);
        let trained = &report["final_valid"];
        let eval = common::run_ok(&[
            "eval",
            "--json",
            "--model",
            model.to_str().unwrap(),
            valid.to_str().unwrap(),
        ]);
        let eval: serde_json::Value = serde_json::from_str(&eval.stdout).unwrap();
        assert_eq!(eval["rows"], 5_000);
        assert_eq!(eval["loss"], trained["loss"], "{args:?}");
        assert_eq!(eval["accuracy"], trained["accuracy"], "{args:?}");
        assert!(
            trained["accuracy"].as_f64().unwrap() > 0.3,
            "{args:?}: {trained}"
        );
        // Multiclass predictions: the class is the most probable, the probabilities sum to 1.
        let preds = dir.path().join("preds.parquet");
        common::run_ok(&[
            "predict",
            "-q",
            "--model",
            model.to_str().unwrap(),
            valid.to_str().unwrap(),
            "--out",
            preds.to_str().unwrap(),
        ]);
        let out = read_parquet(&preds);
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 5_000);
        for batch in &out {
            let class = batch
                .column_by_name("class")
                .unwrap()
                .as_primitive::<Int64Type>();
            let lists = batch
                .column_by_name("probabilities")
                .unwrap()
                .as_fixed_size_list();
            for i in 0..batch.num_rows() {
                let p = lists.value(i);
                let p = p.as_primitive::<Float32Type>().values();
                assert_eq!(p.len(), 10);
                assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
                let best = p
                    .iter()
                    .enumerate()
                    .fold(0, |b, (k, v)| if *v > p[b] { k } else { b });
                assert_eq!(class.value(i), best as i64);
            }
            assert!(lists.null_count() == 0);
        }
    }
}
