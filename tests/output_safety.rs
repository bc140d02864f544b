//! The files a command writes never destroy what it reads or what the system owns (issue 14,
//! items 4, 5, 7, 8, 13 and 14c): an output that is an input file, or lies inside a shard
//! dataset being read, is refused before anything runs; a device or FIFO is written through,
//! never replaced, and a directory is refused; a model file that is a FIFO is refused instead
//! of waited on; `generate` into a non-empty directory needs `--force`, which clears the old
//! dataset; an unwritable output directory fails before training; `predict --keep` naming a
//! column twice is an error.
//!
//! The recipe's dataset: `generate --rows 2000 --features 4 --shards 1 --row-group-rows 500`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use streamfit::generate::Task;

/// The recipe's dataset in `dir/name`: 2,000 rows × 4 features, one file of 500-row groups.
fn small(dir: &Path, name: &str) -> PathBuf {
    let data = dir.join(name);
    common::dataset(&data, Task::Logistic, 2_000, 4, 1, 500, 0);
    data
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Asserts that `stderr` is one clean error (no panic) holding every needle.
#[track_caller]
fn assert_error(stderr: &str, needles: &[&str]) {
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

/// Runs `train` on `data` with `extra` flags, expecting exit code `code` before training
/// started: the plan (printed once the run is prepared) never appears. Returns stderr.
#[track_caller]
fn train_refused(data: &Path, extra: &[&str], code: i32) -> String {
    let mut args = vec!["train", s(data), "--epochs", "2"];
    args.extend_from_slice(extra);
    let outcome = common::run(&args, common::TIMEOUT);
    assert!(
        !outcome.stdout.contains("memory budget"),
        "{}: trained before refusing:\n{}",
        outcome.command,
        outcome.stdout
    );
    outcome.fails_with(code)
}

/// Runs `mkfifo path` (std has no mkfifo).
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[cfg(unix)]
fn is_char_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(unix)]
#[test]
fn an_output_that_is_an_input_file_is_refused_before_anything_runs() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let input = data.join("part-00000.parquet");
    let before = std::fs::read(&input).unwrap();
    // The same file under other names: a symlink and a hard link, outside the dataset.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let symlink = elsewhere.join("link.json");
    std::os::unix::fs::symlink(&input, &symlink).unwrap();
    let hard = elsewhere.join("hard.json");
    std::fs::hard_link(&input, &hard).unwrap();
    for flag in ["--save-model", "--report", "--plot", "--metrics", "--trace"] {
        for out in [&input, &symlink, &hard] {
            let stderr = train_refused(&data, &[flag, s(out)], 2);
            assert_error(
                &stderr,
                &[flag, s(out), "part-00000.parquet", "is the input file"],
            );
            assert_eq!(std::fs::read(&input).unwrap(), before, "{flag} {out:?}");
        }
    }
    // Validation data is read too.
    let valid = small(dir.path(), "valid");
    let valid_file = valid.join("part-00000.parquet");
    let stderr = train_refused(
        &data,
        &["--valid", s(&valid), "--report", s(&valid_file)],
        2,
    );
    assert_error(&stderr, &["--report", s(&valid_file)]);
    // A new file beside the inputs is fine.
    common::run_ok(&[
        "train",
        s(&data),
        "-q",
        "--report",
        s(&data.join("report.json")),
    ]);
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn an_output_inside_a_shard_dataset_being_read_is_refused() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let shards = dir.path().join("shards");
    common::to_shards(&data, &shards, None, 1);
    let manifest = shards.join("manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    let stderr = train_refused(&shards, &["--report", s(&manifest)], 2);
    assert_error(&stderr, &["--report", s(&manifest)]);
    let new = shards.join("report.json");
    let stderr = train_refused(&shards, &["--save-model", s(&new)], 2);
    assert_error(&stderr, &["--save-model", s(&new), "shard dataset"]);
    for ck in [shards.clone(), shards.join("ck")] {
        let stderr = train_refused(&shards, &["--checkpoint-dir", s(&ck)], 2);
        assert_error(&stderr, &["--checkpoint-dir", "shard dataset"]);
    }
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    let mut names: Vec<_> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "shard-00000.sfs"]);
    // Predicting into it is refused too.
    let model = dir.path().join("model.json");
    common::run_ok(&["train", s(&data), "-q", "--save-model", s(&model)]);
    let out = shards.join("preds.parquet");
    let stderr = common::run_err(
        &[
            "predict",
            "-q",
            "--model",
            s(&model),
            s(&shards),
            "--out",
            s(&out),
        ],
        2,
    );
    assert_error(&stderr, &["--out", s(&out), "shard dataset"]);
    assert!(!out.exists());
}

#[test]
fn predict_plot_and_convert_refuse_to_overwrite_what_they_read() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let input = data.join("part-00000.parquet");
    let model = dir.path().join("model.json");
    let metrics = dir.path().join("metrics.jsonl");
    common::run_ok(&[
        "train",
        s(&data),
        "-q",
        "--save-model",
        s(&model),
        "--metrics",
        s(&metrics),
    ]);
    let snapshot = |paths: &[&Path]| -> Vec<Vec<u8>> {
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    let before = snapshot(&[&input, &model, &metrics]);
    for out in [&input, &model] {
        let stderr = common::run_err(
            &[
                "predict",
                "-q",
                "--model",
                s(&model),
                s(&data),
                "--out",
                s(out),
            ],
            2,
        );
        assert_error(&stderr, &["--out", s(out), "is the input file"]);
    }
    let stderr = common::run_err(&["plot", s(&metrics), "--out", s(&metrics)], 2);
    assert_error(&stderr, &["--out", s(&metrics), "is the input file"]);
    assert_eq!(snapshot(&[&input, &model, &metrics]), before);

    // `convert --out X` clears a leftover `X.partial`: never one holding the input.
    let scratch = dir.path().join("x.partial");
    common::dataset(&scratch, Task::Logistic, 1_000, 2, 1, 500, 1);
    let out = dir.path().join("x");
    let stderr = common::run_err(&["convert", s(&scratch), "--out", s(&out)], 2);
    assert_error(&stderr, &["--out", "x.partial"]);
    assert!(scratch.join("part-00000.parquet").is_file());
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn a_report_on_a_character_device_is_written_through_not_replaced() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    // First a private copy of /dev/null (root can make one): were it replaced, the test stops
    // here, before it points the run at the system's own /dev/null.
    let copy = dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&copy)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        common::run_ok(&["train", s(&data), "-q", "--report", s(&copy)]);
        assert!(is_char_device(&copy), "{} was replaced", copy.display());
    }
    let null = Path::new("/dev/null");
    assert!(is_char_device(null));
    for flag in ["--report", "--save-model", "--plot", "--metrics"] {
        common::run_ok(&["train", s(&data), "-q", flag, "/dev/null"]);
        assert!(is_char_device(null), "{flag} replaced /dev/null");
    }
}

#[cfg(unix)]
#[test]
fn a_report_on_a_fifo_is_written_into_it() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let fifo = dir.path().join("report.fifo");
    mkfifo(&fifo);
    let mut reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat");
    let outcome = common::run(
        &["train", s(&data), "-q", "--report", s(&fifo)],
        common::TIMEOUT,
    );
    // `cat` ends when the writer closes the FIFO; if nothing ever opened it, it waits forever.
    let started = Instant::now();
    while reader.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if reader.try_wait().unwrap().is_none() {
        let _ = reader.kill();
    }
    let read = reader.wait_with_output().unwrap();
    outcome.ok();
    assert!(is_fifo(&fifo), "the FIFO was replaced");
    let report: serde_json::Value =
        serde_json::from_slice(&read.stdout).expect("the report came through the FIFO");
    assert_eq!(report["rows"], 2_000);
}

#[test]
fn an_output_that_is_a_directory_is_refused_at_start() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    for flag in ["--report", "--save-model", "--plot"] {
        let stderr = train_refused(&data, &[flag, s(&taken)], 2);
        assert_error(&stderr, &[flag, s(&taken), "is a directory"]);
    }
    assert!(taken.is_dir());
}

#[cfg(unix)]
#[test]
fn a_model_file_that_is_a_fifo_is_refused_not_waited_on() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let fifo = dir.path().join("model.json");
    mkfifo(&fifo);
    let out = dir.path().join("preds.parquet");
    let limit = Duration::from_secs(20);
    for args in [
        vec![
            "predict",
            "-q",
            "--model",
            s(&fifo),
            s(&data),
            "--out",
            s(&out),
        ],
        vec!["eval", "--model", s(&fifo), s(&data)],
    ] {
        let stderr = common::run(&args, limit).fails_with(2);
        assert_error(&stderr, &[s(&fifo), "fifo", "not a regular file"]);
    }
    assert!(!out.exists());
}

#[test]
fn generate_refuses_a_non_empty_directory_and_force_clears_the_old_parts() {
    let dir = common::tempdir();
    let out = dir.path().join("data");
    let generate = |shards: &str, force: bool| {
        let mut args = vec![
            "generate",
            "--out",
            s(&out),
            "--rows",
            "2000",
            "--features",
            "4",
            "--shards",
            shards,
            "--row-group-rows",
            "500",
            "-q",
        ];
        if force {
            args.push("--force");
        }
        common::run(&args, common::TIMEOUT)
    };
    generate("4", false).ok();
    assert_eq!(common::parquet_files(&out).len(), 4);
    let stderr = generate("2", false).fails_with(2);
    assert_error(&stderr, &[s(&out), "not empty", "--force"]);
    assert_eq!(common::parquet_files(&out).len(), 4, "untouched");

    // Files of the kind generate and convert write go; the user's other files stay.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    std::fs::write(out.join("manifest.json"), "{}").unwrap();
    generate("2", true).ok();
    let parts: Vec<String> = common::parquet_files(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts, ["part-00000.parquet", "part-00001.parquet"]);
    assert!(!out.join("manifest.json").exists());
    assert!(out.join("notes.txt").is_file());
    let rows: usize = common::parquet_files(&out)
        .iter()
        .flat_map(|f| common::read_parquet(f))
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2_000);
    let truth = common::read_json(&out.join("truth.json"));
    assert_eq!(truth["rows"], 2_000);
    assert_eq!(truth["files"].as_array().unwrap().len(), 2);

    // A Parquet file generate did not write would be read with the new dataset: even
    // `--force` leaves the directory alone.
    std::fs::write(out.join("other.parquet"), "not generated").unwrap();
    let stderr = generate("2", true).fails_with(2);
    assert_error(&stderr, &["other.parquet"]);
    assert!(out.join("part-00001.parquet").is_file());
}

/// An existing directory this process cannot create files in. Permission bits stop an
/// ordinary user; root ignores them, but sysfs refuses new files even to root (EACCES), so
/// as root the directory is `/sys`.
fn unwritable_dir(scratch: &Path) -> Option<PathBuf> {
    let locked = scratch.join("locked");
    std::fs::create_dir(&locked).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let writable = |dir: &Path| std::fs::write(dir.join("probe"), b"").is_ok();
    if !writable(&locked) {
        return Some(locked);
    }
    let sys = Path::new("/sys");
    (sys.is_dir() && !writable(sys)).then(|| sys.to_path_buf())
}

#[test]
fn an_unwritable_output_directory_fails_before_training() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let Some(locked) = unwritable_dir(dir.path()) else {
        eprintln!("skipped: no unwritable directory to test with");
        return;
    };
    let file = locked.join("out.json");
    for (flag, path) in [
        ("--save-model", &file),
        ("--report", &file),
        ("--plot", &file),
        ("--metrics", &file),
        ("--checkpoint-dir", &locked),
    ] {
        let stderr = train_refused(&data, &[flag, s(path)], 1);
        assert_error(&stderr, &[s(&locked)]);
    }
    // A checkpoint directory still to be made: its nearest existing parent must take it.
    let nested = locked.join("ck").join("deeper");
    let stderr = train_refused(&data, &["--checkpoint-dir", s(&nested)], 1);
    assert_error(&stderr, &[s(&locked)]);
    // Back to writable, so the temporary directory can be removed.
    #[cfg(unix)]
    if locked.starts_with(dir.path()) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn predict_refuses_a_column_kept_twice() {
    let dir = common::tempdir();
    let data = small(dir.path(), "small");
    let model = dir.path().join("model.json");
    common::run_ok(&["train", s(&data), "-q", "--save-model", s(&model)]);
    let out = dir.path().join("preds.parquet");
    let stderr = common::run_err(
        &[
            "predict",
            "-q",
            "--model",
            s(&model),
            s(&data),
            "--out",
            s(&out),
            "--keep",
            "f0,f0",
        ],
        2,
    );
    assert_error(&stderr, &["--keep", "`f0`", "twice"]);
    assert!(!out.exists());
}
