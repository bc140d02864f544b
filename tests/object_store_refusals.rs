//! Runs that refuse what they cannot see or what changed under them (issue 16): a checkpoint
//! directory or prefix that cannot be listed stops `--resume auto` (it never starts afresh
//! over checkpoints it cannot see), and a remote object rewritten after the run listed it
//! stops the run with an error naming its URL. Footers of remote files are opened several at
//! a time, yet a failure is reported, and bad files skipped, in listing order.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};

use common::{run_err, tempdir};
use s3::{Faults, Rewrite, bucket_dataset, run_s3, s3_server, s3_server_rewriting};

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The bucket's data files (`root/bucket/data`), sorted by name.
fn data_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("bucket/data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// The files under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn resume_auto_refuses_a_checkpoint_prefix_that_cannot_be_listed() {
    let root = tempdir();
    bucket_dataset(root.path(), 4_000, 500);
    let server = s3_server(
        root.path(),
        Faults {
            refuse_lists: true,
            ..Faults::default()
        },
    );
    let out = tempdir();
    let model = out.path().join("model.json");
    // The data is local: only the checkpoint prefix's listing fails (403).
    let data = root.path().join("bucket/data");
    for resume in [&["--resume", "auto"][..], &[][..]] {
        let mut args = vec![
            "train",
            "-q",
            s(&data),
            "--epochs",
            "1",
            "--checkpoint-dir",
            "s3://bucket/runs/ck/",
            "--save-model",
            s(&model),
        ];
        args.extend_from_slice(resume);
        let err = run_s3(&server, &args).fails_with(2);
        assert!(
            err.contains("--checkpoint-dir")
                && err.contains("cannot look for checkpoints")
                && err.contains("s3://bucket/runs/ck")
                && err.contains("403"),
            "{resume:?}: {err}"
        );
        // Refused before training: no model, no checkpoint object, no lock left behind.
        assert!(!model.exists(), "{resume:?}");
        let left: Vec<_> = walk(&root.path().join("bucket/runs"));
        assert!(left.is_empty(), "{resume:?}: {left:?}");
    }
}

#[test]
fn resume_auto_refuses_a_local_checkpoint_directory_that_cannot_be_listed() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        eprintln!("skipped: running as root, directory permissions do not apply");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let data = dir.path().join("data");
    common::dataset(
        &data,
        streamfit::generate::Task::Logistic,
        1_000,
        3,
        1,
        500,
        1,
    );
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    // Writable and searchable, not readable: a run could write checkpoints it cannot list.
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o300)).unwrap();
    let err = run_err(
        &[
            "train",
            "-q",
            s(&data),
            "--epochs",
            "1",
            "--checkpoint-dir",
            s(&ck),
            "--resume",
            "auto",
        ],
        2,
    );
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        err.contains("cannot look for checkpoints") && err.contains(s(&ck)),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&ck).unwrap().count(), 0);
}

#[test]
fn an_object_rewritten_after_the_listing_stops_the_run_naming_its_url() {
    let root = tempdir();
    // 4 files of 10,000 rows in row groups of 5,000 (about 100 kB each), so a unit is read
    // by a GET of its own after the footer's (the last 64 KiB).
    bucket_dataset(root.path(), 40_000, 5_000);
    let files = data_files(root.path());
    let (first, last) = (&files[0], &files[files.len() - 1]);
    let mut bytes = std::fs::read(last).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0xff;
    let first_name = first.file_name().unwrap().to_str().unwrap();
    let last_url = format!(
        "s3://bucket/data/{}",
        last.file_name().unwrap().to_str().unwrap()
    );
    // Every footer is read when the data is opened; the first file's second ranged GET is
    // its first unit: the last file is rewritten then, before any of its units is read
    // (one reader, no shuffle, a fetch-ahead budget of one unit at most).
    let server = s3_server_rewriting(
        root.path(),
        Faults::default(),
        Some(Rewrite {
            when_reading: format!("/bucket/data/{first_name}"),
            nth: 2,
            path: last.clone(),
            bytes,
        }),
    );
    let out = tempdir();
    let model = out.path().join("model.json");
    let err = run_s3(
        &server,
        &[
            "train",
            "-q",
            "s3://bucket/data/",
            "--epochs",
            "1",
            "--readers",
            "1",
            "--no-shuffle",
            "--fetch-ahead-bytes",
            "100",
            "--save-model",
            s(&model),
        ],
    )
    .fails_with(2);
    assert!(
        err.contains(&last_url) && err.contains("changed"),
        "expected an error naming {last_url}: {err}"
    );
    assert!(!model.exists());
}

#[test]
fn remote_footers_opened_concurrently_fail_and_skip_in_listing_order() {
    // 12 files, opened up to 8 at a time: the 6th and 10th are not Parquet.
    let root = tempdir();
    common::dataset(
        &root.path().join("bucket/data"),
        streamfit::generate::Task::Logistic,
        12_000,
        3,
        12,
        500,
        5,
    );
    let files = data_files(root.path());
    assert_eq!(files.len(), 12);
    for bad in [&files[5], &files[9]] {
        std::fs::write(bad, vec![b'x'; 4_000]).unwrap();
    }
    let name = |i: usize| files[i].file_name().unwrap().to_str().unwrap().to_string();
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let report = out.path().join("report.json");
    let args = |on_bad_file: &'static str| {
        vec![
            "train".to_string(),
            "-q".to_string(),
            "s3://bucket/data/".to_string(),
            "--epochs".to_string(),
            "1".to_string(),
            "--on-bad-file".to_string(),
            on_bad_file.to_string(),
            "--report".to_string(),
            s(&report).to_string(),
        ]
    };
    let error_args = args("error");
    let error_args: Vec<&str> = error_args.iter().map(String::as_str).collect();
    let err = run_s3(&server, &error_args).fails_with(2);
    assert!(
        err.contains(&name(5)) && !err.contains(&name(9)),
        "the first bad file in listing order: {err}"
    );
    let skip_args = args("skip");
    let skip_args: Vec<&str> = skip_args.iter().map(String::as_str).collect();
    run_s3(&server, &skip_args).ok();
    let report = common::read_json(&report);
    assert_eq!(report["rows"], 10_000, "{report}");
    let skipped: Vec<String> = report["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].contains(&name(5)) && skipped[1].contains(&name(9)),
        "{skipped:?}"
    );
}
