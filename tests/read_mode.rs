//! Reading local files explicitly instead of through their maps (issue 17): `--read-mode read`
//! (one read per unit into the reader's buffer, bypassing or dropped from the page cache) gives
//! the same rows as `--read-mode map`, so the same model bit for bit, on Parquet (page path,
//! arrow path, several row groups per file) and on shards; `auto` reads explicitly exactly when
//! the data files are larger than the memory left beside the run's budget, and says so; the
//! report records the mode.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Outcome, binary, read_json, run_command, tempdir};
use streamfit::generate::Task;

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `streamfit train DATA --read-mode MODE` with `available_mb` injected as the memory available,
/// writing the model and report into `out`; returns the model's bytes, the report and what the
/// run printed.
fn train(
    data: &Path,
    mode: &str,
    available_mb: u64,
    out: &Path,
    extra: &[&str],
) -> (Vec<u8>, serde_json::Value, Outcome) {
    std::fs::create_dir_all(out).unwrap();
    let (model, report) = (out.join("model.json"), out.join("report.json"));
    let mut command = Command::new(binary());
    command
        .args(["train", s(data), "--read-mode", mode, "--epochs", "2"])
        .args(["--shuffle-buffer", "5000", "--save-model", s(&model)])
        .args(["--report", s(&report)])
        .args(extra)
        .env("STREAMFIT_AVAILABLE_MEMORY_MB", available_mb.to_string());
    let outcome = run_command(command, Duration::from_secs(120)).ok();
    (std::fs::read(&model).unwrap(), read_json(&report), outcome)
}

/// 60,000 rows × 16 features in 3 files of 4 row groups each (about 4 MB of Parquet).
fn parquet(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    common::dataset(&data, Task::Logistic, 60_000, 16, 3, 5_000, 3);
    data
}

#[test]
fn explicit_reads_train_the_same_model_as_the_map_on_parquet_and_shards() {
    let dir = tempdir();
    let data = parquet(dir.path());
    let shards = dir.path().join("shards");
    common::to_shards(&data, &shards, Some(7_000), 2);
    for (name, data) in [("parquet", &data), ("shards", &shards)] {
        let out = |mode: &str| dir.path().join(format!("{name}-{mode}"));
        let (mapped, report, _) = train(data, "map", 4_000, &out("map"), &[]);
        assert_eq!(report["read_mode"], "map", "{name}");
        let (read, report, printed) = train(data, "read", 4_000, &out("read"), &["--readers", "3"]);
        assert_eq!(report["read_mode"], "read", "{name}");
        assert!(
            printed.stdout.contains("files read explicitly"),
            "{name}: {}",
            printed.stdout
        );
        assert!(
            read == mapped,
            "{name}: explicit reads trained another model"
        );
    }
}

#[test]
fn explicit_reads_of_columns_the_page_path_does_not_take_match_the_map() {
    // Dictionary-encoded float64 columns go through the arrow reader, not the page path.
    use arrow_array::{ArrayRef, Float64Array};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for file in 0..2 {
        let rows = 3_000;
        let x: Vec<f64> = (0..rows).map(|i| ((i * 7 + file) % 13) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| f64::from(*v > 6.0)).collect();
        let batch = arrow_array::RecordBatch::try_from_iter([
            ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
            ("label", Arc::new(Float64Array::from(y)) as ArrayRef),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_000))
            .set_dictionary_enabled(true)
            .build();
        common::write_parquet(
            &data.join(format!("part-{file}.parquet")),
            &batch,
            Some(props),
        );
    }
    let (mapped, _, _) = train(&data, "map", 4_000, &dir.path().join("map"), &[]);
    let (read, _, _) = train(&data, "read", 4_000, &dir.path().join("read"), &[]);
    assert!(read == mapped, "explicit reads trained another model");
}

#[test]
fn auto_reads_explicitly_only_when_the_data_does_not_fit_beside_the_budget() {
    let dir = tempdir();
    let data = parquet(dir.path());
    let bytes: u64 = common::parquet_files(&data)
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    // Plenty of memory: the map.
    let (mapped, report, printed) = train(&data, "auto", 4_000, &dir.path().join("plenty"), &[]);
    assert_eq!(report["read_mode"], "map");
    assert!(
        !printed.stdout.contains("read explicitly"),
        "{}",
        printed.stdout
    );
    // The budget fits, but not the data beside it: explicit reads.
    let budget = report["memory_budget_bytes"].as_u64().unwrap();
    let available_mb = (budget + bytes / 2).div_ceil(1_000_000) + 1;
    assert!(
        available_mb * 1_000_000 < budget + bytes,
        "the test's data ({bytes} bytes) must not fit beside the budget ({budget})"
    );
    let (read, report, printed) =
        train(&data, "auto", available_mb, &dir.path().join("tight"), &[]);
    assert_eq!(report["read_mode"], "read", "{}", printed.stdout);
    assert!(
        printed.stdout.contains("files read explicitly"),
        "{}",
        printed.stdout
    );
    assert!(read == mapped, "the mode changed the model");
}

#[test]
fn a_read_mode_that_does_not_exist_is_refused() {
    let dir = tempdir();
    let data = parquet(dir.path());
    let err = common::run_err(&["train", s(&data), "--read-mode", "mmap"], 2);
    assert!(err.contains("--read-mode"), "{err}");
    assert!(
        err.contains("auto") && err.contains("map") && err.contains("read"),
        "{err}"
    );
}
