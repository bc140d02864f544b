//! `eval`'s comparison figures against the test's own exact computation over `predict`'s
//! output: AUC (within the histogram's stated bound), precision, recall, F1 and the confusion
//! matrix for a binary model; R² and MAE for regression; the confusion matrix and macro F1 for
//! softmax.

mod common;

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use common::{f32_column, read_parquet};
use streamfit::generate::Task;

/// Trains with `args`, then returns `eval --json` and `predict`'s output on the same data.
fn train_eval_predict(
    dir: &Path,
    data: &Path,
    args: &[&str],
) -> (serde_json::Value, Vec<arrow_array::RecordBatch>) {
    let model = dir.join("model.json");
    let preds = dir.join("preds.parquet");
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    let mut train = vec!["train", d, "-q", "--epochs", "1", "--save-model", m];
    train.extend_from_slice(args);
    common::run_ok(&train);
    let eval = common::run_ok(&["eval", "--json", "--model", m, d]);
    let eval: serde_json::Value = serde_json::from_str(&eval.stdout).unwrap();
    let out = preds.to_str().unwrap();
    common::run_ok(&["predict", "-q", "--model", m, d, "--out", out]);
    (eval, read_parquet(&preds))
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()).max(1e-300)
}

fn label_column(data: &Path) -> Vec<f32> {
    let input: Vec<_> = common::parquet_files(data)
        .iter()
        .flat_map(|f| read_parquet(f))
        .collect();
    f32_column(&input, "label")
}

#[test]
fn binary_eval_matches_an_exact_computation_over_the_predictions() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 5, 2, 4_000, 7);
    let (eval, preds) = train_eval_predict(dir.path(), &data, &[]);
    let p = f32_column(&preds, "probability");
    let y = label_column(&data);
    assert_eq!(p.len(), y.len());
    // Exact AUC: the share of (positive, negative) pairs ordered correctly, ties counting half
    // (sort by score, average ranks of ties: the Mann–Whitney U statistic).
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &r in &order[i..=j] {
            if y[r] >= 0.5 {
                rank_sum_pos += mean_rank;
            }
        }
        i = j + 1;
    }
    let num_pos = y.iter().filter(|&&v| v >= 0.5).count() as f64;
    let num_neg = y.len() as f64 - num_pos;
    let exact_auc = (rank_sum_pos - num_pos * (num_pos + 1.0) / 2.0) / (num_pos * num_neg);
    // The fraction of positive–negative pairs that share one of the 4,096 bins.
    let bin = |v: f32| ((f64::from(v) * 4096.0) as usize).min(4095);
    let (mut pos_bins, mut neg_bins) = (vec![0f64; 4096], vec![0f64; 4096]);
    for (&v, &l) in p.iter().zip(&y) {
        if l >= 0.5 {
            pos_bins[bin(v)] += 1.0;
        } else {
            neg_bins[bin(v)] += 1.0;
        }
    }
    let shared: f64 = pos_bins
        .iter()
        .zip(&neg_bins)
        .map(|(a, b)| a * b)
        .sum::<f64>()
        / (num_pos * num_neg);
    let auc = eval["auc"].as_f64().unwrap();
    let bound = eval["auc_max_error"].as_f64().unwrap();
    assert!(bound <= shared + 1e-12, "bound {bound} > shared {shared}");
    assert!(
        (auc - exact_auc).abs() <= bound + 1e-9,
        "auc {auc} vs exact {exact_auc} (bound {bound})"
    );
    assert!(exact_auc > 0.6, "the model learned something: {exact_auc}");
    // Confusion at probability ≥ 0.5, [actual][predicted].
    let mut confusion = [[0u64; 2]; 2];
    for (&v, &l) in p.iter().zip(&y) {
        confusion[usize::from(l >= 0.5)][usize::from(v >= 0.5)] += 1;
    }
    let expected_confusion: Vec<Vec<u64>> = confusion.iter().map(|r| r.to_vec()).collect();
    assert_eq!(
        eval["confusion"],
        serde_json::to_value(&expected_confusion).unwrap()
    );
    let (tp, fp, fn_) = (
        confusion[1][1] as f64,
        confusion[0][1] as f64,
        confusion[1][0] as f64,
    );
    let (precision, recall) = (tp / (tp + fp), tp / (tp + fn_));
    let f1 = 2.0 * precision * recall / (precision + recall);
    assert!(close(eval["precision"].as_f64().unwrap(), precision, 1e-12));
    assert!(close(eval["recall"].as_f64().unwrap(), recall, 1e-12));
    assert!(close(eval["f1"].as_f64().unwrap(), f1, 1e-12));
    let accuracy = (confusion[0][0] + confusion[1][1]) as f64 / y.len() as f64;
    assert!(close(eval["accuracy"].as_f64().unwrap(), accuracy, 1e-12));
    assert_eq!(eval["rows"], 20_000);
    for key in [
        "loss",
        "accuracy",
        "auc",
        "precision",
        "recall",
        "f1",
        "confusion",
    ] {
        assert!(eval.get(key).is_some(), "{key} missing: {eval}");
    }
    assert!(
        eval.get("r2").is_none() && eval.get("mae").is_none(),
        "{eval}"
    );
}

#[test]
fn regression_eval_reports_r2_and_mae_of_the_predictions() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Linear, 12_000, 4, 2, 3_000, 3);
    let (eval, preds) = train_eval_predict(dir.path(), &data, &["--model", "linear"]);
    let p = f32_column(&preds, "prediction");
    let y = label_column(&data);
    let n = y.len() as f64;
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let sst: f64 = y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
    let sse: f64 = p
        .iter()
        .zip(&y)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let mae = p
        .iter()
        .zip(&y)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .sum::<f64>()
        / n;
    let r2 = 1.0 - sse / sst;
    let (got_r2, got_mae) = (eval["r2"].as_f64().unwrap(), eval["mae"].as_f64().unwrap());
    assert!(close(got_r2, r2, 1e-6), "r2 {got_r2} vs {r2}");
    assert!(close(got_mae, mae, 1e-6), "mae {got_mae} vs {mae}");
    assert!(
        eval.get("rmse").is_some() && eval.get("auc").is_none(),
        "{eval}"
    );
    // The text output keeps its first line and adds R² and MAE after it.
    let m = dir.path().join("model.json");
    let text = common::run_ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with("eval: 12,000 rows, loss "),
        "{}",
        text.stdout
    );
    assert!(
        lines[1].contains("R² ") && lines[1].contains("MAE "),
        "{}",
        text.stdout
    );
}

#[test]
fn softmax_eval_confusion_sums_to_the_rows_and_macro_f1_matches() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Multiclass, 10_000, 6, 2, 2_500, 5);
    let (eval, preds) = train_eval_predict(
        dir.path(),
        &data,
        &["--model", "softmax", "--classes", "10", "--lr", "0.5"],
    );
    let class: Vec<i64> = preds
        .iter()
        .flat_map(|b| {
            b.column_by_name("class")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let y = label_column(&data);
    let k = 10;
    let mut confusion = vec![vec![0u64; k]; k];
    for (&c, &l) in class.iter().zip(&y) {
        confusion[l as usize][c as usize] += 1;
    }
    let got: Vec<Vec<u64>> = serde_json::from_value(eval["confusion"].clone()).unwrap();
    assert_eq!(got.iter().flatten().sum::<u64>(), 10_000);
    assert_eq!(got, confusion);
    let mut f1_sum = 0.0;
    for (c, row) in confusion.iter().enumerate() {
        let tp = row[c] as f64;
        let predicted: f64 = confusion.iter().map(|r| r[c] as f64).sum();
        let actual: f64 = row.iter().sum::<u64>() as f64;
        let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
        let recall = if actual > 0.0 { tp / actual } else { 0.0 };
        f1_sum += if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
    }
    let f1 = eval["f1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&f1), "{f1}");
    assert!(
        close(f1, f1_sum / k as f64, 1e-12),
        "{f1} vs {}",
        f1_sum / k as f64
    );
    assert_eq!(eval["per_class"].as_array().unwrap().len(), k);
    assert!(eval.get("auc").is_none(), "{eval}");
}

#[test]
fn eval_text_prints_accuracy_as_a_percentage_like_train() {
    // `train` prints `accuracy 74.45%`; `eval`'s text says the same of the same fraction that
    // `--json` keeps in [0, 1].
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 6_000, 4, 1, 3_000, 9);
    let (eval, _) = train_eval_predict(dir.path(), &data, &[]);
    let fraction = eval["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fraction), "{eval}");
    let m = dir.path().join("model.json");
    let text = common::run_ok(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let expected = format!(", accuracy {:.2}%", fraction * 100.0);
    let first = text.stdout.lines().next().unwrap();
    assert!(first.contains(&expected), "{first} lacks {expected}");
}
