//! Data-parallel training on MPI (built with `--features mpi`, run under `mpirun -np 2`): every
//! row used exactly once per epoch across the ranks, bit-identical repeats, one 2-rank step
//! equal to the single-process step over the union of the rank batches, convergence, uneven
//! shares without deadlock, and a bad file read by rank 1 alone ending the whole job.

#![cfg(feature = "mpi")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use streamfit::data::source::write::{Compression, ParquetWriter};
use streamfit::generate::{Task, Truth};
use streamfit::train::ModelFile;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `mpirun -np 2 streamfit ARGS`, failing the test after `timeout`.
fn mpirun(args: &[&str], timeout: Duration) -> common::Outcome {
    let mut command = Command::new("mpirun");
    command
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(common::binary())
        .args(args)
        // Containers often forbid the cross-memory-attach single copy; use plain copies.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    common::run_command(command, timeout)
}

#[test]
fn every_row_is_used_once_per_epoch_across_ranks_and_repeats_are_bit_identical() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 10_000, 4, 4, 1_000, 5);
    let mut models = Vec::new();
    for run in 0..2 {
        let ids = dir.path().join(format!("ids-{run}"));
        std::fs::create_dir(&ids).unwrap();
        let model = dir.path().join(format!("model-{run}.json"));
        let rep = dir.path().join(format!("report-{run}.json"));
        mpirun(
            &[
                "train",
                data.to_str().unwrap(),
                "--epochs",
                "2",
                "--batch-size",
                "100",
                "--shuffle-buffer",
                "1500",
                "--threads",
                "1",
                "--save-model",
                model.to_str().unwrap(),
                "--report",
                rep.to_str().unwrap(),
                "--debug-row-ids",
                ids.to_str().unwrap(),
            ],
            TIMEOUT,
        )
        .ok();
        for epoch in 1..=2 {
            let mut all = Vec::new();
            let mut per_rank = Vec::new();
            for rank in 0..2 {
                let text =
                    std::fs::read_to_string(ids.join(format!("rank-{rank}-epoch-{epoch}.txt")))
                        .unwrap();
                let rank_ids: Vec<u64> = text
                    .split_whitespace()
                    .map(|v| v.parse().unwrap())
                    .collect();
                per_rank.push(rank_ids.len());
                all.extend(rank_ids);
            }
            assert_eq!(
                all.len(),
                10_000,
                "epoch {epoch}: rows per rank {per_rank:?}"
            );
            let unique: BTreeSet<u64> = all.iter().copied().collect();
            assert_eq!(unique, (0..10_000).collect(), "epoch {epoch}");
            assert!(per_rank.iter().all(|&n| n > 0), "{per_rank:?}");
        }
        let r = common::read_json(&rep);
        assert_eq!(r["ranks"], 2);
        assert_eq!(r["rows_per_epoch"], 10_000);
        models.push(std::fs::read(&model).unwrap());
    }
    assert_eq!(models[0], models[1], "two identical 2-rank runs differ");
}

#[test]
fn one_two_rank_step_equals_the_single_process_step_over_both_batches() {
    // No shuffling and batch = N: each rank's batch is its half of the units, and the one
    // update uses the gradient over their union, as the single process does.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 4_000, 6, 2, 1_000, 8);
    let args = |model: &Path| {
        vec![
            "train".to_string(),
            data.to_str().unwrap().to_string(),
            "--no-shuffle".into(),
            "--batch-size".into(),
            "full".into(),
            "--lr".into(),
            "0.5".into(),
            "--quiet".into(),
            "--save-model".into(),
            model.to_str().unwrap().to_string(),
        ]
    };
    let (two, one) = (dir.path().join("two.json"), dir.path().join("one.json"));
    let two_args = args(&two);
    mpirun(
        &two_args.iter().map(String::as_str).collect::<Vec<_>>(),
        TIMEOUT,
    )
    .ok();
    let one_args = args(&one);
    common::run(
        &one_args.iter().map(String::as_str).collect::<Vec<_>>(),
        TIMEOUT,
    )
    .ok();
    let (two, one) = (
        ModelFile::load(&two).unwrap(),
        ModelFile::load(&one).unwrap(),
    );
    for (a, b) in two.parameters().iter().zip(one.parameters()) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        assert_ne!(*a, 0.0);
    }
}

#[test]
fn two_rank_logistic_regression_recovers_the_true_weights() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let truth: Truth = common::dataset(&data, Task::Logistic, 120_000, 16, 4, 8_192, 3);
    let model = dir.path().join("model.json");
    mpirun(
        &[
            "train",
            data.to_str().unwrap(),
            "--epochs",
            "3",
            "--threads",
            "1",
            "--quiet",
            "--save-model",
            model.to_str().unwrap(),
        ],
        TIMEOUT,
    )
    .ok();
    let w = ModelFile::load(&model).unwrap().weights;
    let cosine = common::cosine(&w, &truth.weights);
    assert!(cosine >= 0.99, "cosine {cosine}");
}

/// One Parquet file of `rows` rows in one row group: features `f0`, `f1`, a 0/1 label, and a
/// NaN label at `nan_row` when given.
fn file(path: &Path, rows: usize, nan_row: Option<usize>) {
    let names = ["f0".to_string(), "f1".to_string()];
    let mut writer =
        ParquetWriter::create(path, &names, "label", Compression::Snappy, rows).unwrap();
    let f0: Vec<f32> = (0..rows).map(|i| (i % 7) as f32 - 3.0).collect();
    let f1: Vec<f32> = (0..rows).map(|i| (i % 5) as f32 * 0.5).collect();
    let mut label: Vec<f32> = (0..rows).map(|i| (i % 2) as f32).collect();
    if let Some(r) = nan_row {
        label[r] = f32::NAN;
    }
    writer.write_columns(vec![f0, f1], label).unwrap();
    writer.finish().unwrap();
}

#[test]
fn uneven_shares_finish_without_deadlock_with_the_exact_row_count() {
    // Unshuffled, rank 0 reads a.parquet (3,000 rows) and rank 1 b.parquet (1,000 rows): rank
    // 1 runs out after 8 steps of 128 rows and keeps stepping with zero rows until rank 0's
    // 24 steps are done.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    file(&data.join("a.parquet"), 3_000, None);
    file(&data.join("b.parquet"), 1_000, None);
    let rep = dir.path().join("report.json");
    mpirun(
        &[
            "train",
            data.to_str().unwrap(),
            "--no-shuffle",
            "--epochs",
            "2",
            "--batch-size",
            "256",
            "--quiet",
            "--report",
            rep.to_str().unwrap(),
        ],
        TIMEOUT,
    )
    .ok();
    let r = common::read_json(&rep);
    assert_eq!(r["rows_per_epoch"], 4_000);
    assert_eq!(r["iterations"], 48);
    // The count the learning-rate schedules and the progress bar use is the real one.
    assert_eq!(r["iterations_per_epoch"], 24);
    assert_eq!(r["batch_size"], 256);
    for epoch in r["epoch_summaries"].as_array().unwrap() {
        assert_eq!(epoch["rows"], 4_000);
        assert_eq!(epoch["iterations"], 24);
    }
}

/// Overwrites the header of the first data page of `path` (its footer stays valid, so the file
/// opens, and the damage is found only by the rank that reads the row group).
fn corrupt_first_page(path: &Path) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::io::{Seek, SeekFrom, Write};
    let offset = {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let column = reader.metadata().row_group(0).column(0);
        column
            .dictionary_page_offset()
            .unwrap_or(column.data_page_offset())
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset as u64)).unwrap();
    file.write_all(&[0xff; 24]).unwrap();
}

/// Trains 2 ranks unshuffled on a.parquet (good, read by rank 0) and b.parquet (read by rank 1
/// only, damaged by `damage`), and checks that the whole job fails within seconds with exit
/// code 2, naming rank 1 and every `needle`, and writes no model.
fn rank_1_failure_ends_the_job(damage: fn(&Path), needles: &[&str]) {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    file(&data.join("a.parquet"), 2_000, None);
    damage(&data.join("b.parquet"));
    let model = dir.path().join("model.json");
    let started = Instant::now();
    let stderr = mpirun(
        &[
            "train",
            data.to_str().unwrap(),
            "--no-shuffle",
            "--epochs",
            "3",
            "--save-model",
            model.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .fails_with(2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("rank 1 of 2"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    assert!(!model.exists(), "a model was written");
}

#[test]
fn a_corrupt_file_read_by_rank_1_only_ends_the_whole_job_naming_the_file() {
    // The first page header of b.parquet is garbage; its footer opens fine on every rank.
    rank_1_failure_ends_the_job(
        |b| {
            file(b, 2_000, None);
            corrupt_first_page(b);
        },
        &["b.parquet: corrupt parquet"],
    );
}

#[test]
fn a_bad_value_read_by_rank_1_only_ends_the_whole_job_naming_the_file() {
    rank_1_failure_ends_the_job(
        |b| file(b, 2_000, Some(1_234)),
        &[
            "b.parquet",
            "row 1234",
            "non-finite value NaN in column `label`",
        ],
    );
}

#[test]
fn a_two_rank_run_resumes_from_any_of_its_checkpoints_to_the_same_model() {
    // 12,500 rows in 4 files of row groups 1,000, 1,000, 1,000 and 125 rows: the ranks' shares
    // differ from epoch to epoch, so some checkpoints hold a rank whose share is used up.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 12_500, 5, 4, 1_000, 7);
    // The run's flags (every run of this test uses them, on 2 ranks or on one).
    let flags = [
        "train",
        data.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "100",
        "--shuffle-buffer",
        "2000",
        "--seed",
        "11",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
    ];
    let run = |extra: &[&str], model: &Path| {
        let mut args = flags.to_vec();
        args.extend_from_slice(&[
            "--threads",
            "1",
            "--quiet",
            "--save-model",
            model.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        mpirun(&args, TIMEOUT)
    };
    let checkpoints = dir.path().join("checkpoints");
    let reference = dir.path().join("reference.json");
    run(
        &[
            "--checkpoint-dir",
            checkpoints.to_str().unwrap(),
            "--checkpoint-every",
            "37",
            "--keep-checkpoints",
            "1000",
        ],
        &reference,
    )
    .ok();
    let mut files: Vec<_> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sfck"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let expected = std::fs::read(&reference).unwrap();
    for (i, file) in files.iter().enumerate().take(files.len() - 1) {
        let from = dir.path().join(format!("from-{i}"));
        std::fs::create_dir(&from).unwrap();
        std::fs::copy(file, from.join(file.file_name().unwrap())).unwrap();
        let model = dir.path().join(format!("resumed-{i}.json"));
        run(&["--resume", from.to_str().unwrap()], &model).ok();
        assert_eq!(
            std::fs::read(&model).unwrap(),
            expected,
            "resumed from {}",
            file.display()
        );
    }
    // A different number of ranks is refused, naming it.
    let first = dir.path().join("from-0");
    let mut args = flags.to_vec();
    args.extend_from_slice(&["--resume", first.to_str().unwrap()]);
    let stderr = common::run(&args, TIMEOUT).fails_with(2);
    assert!(
        stderr.contains("the number of MPI ranks was 2, now 1"),
        "{stderr}"
    );
}
