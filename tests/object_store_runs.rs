//! Remote data in whole runs (issue 16): SIGKILL and `--resume auto` on `s3://` data end bit
//! for bit like the uninterrupted run; the printed memory budget counts «fetch_ahead_bytes»;
//! `scan` and `tune` take `s3://` URLs; a presigned query string reaches neither a checkpoint
//! nor `tune`'s recommended command; `gs://` and `az://` (no emulator here) fail with a clear
//! error naming the URL, exit code 2 and no secret; `predict` and `eval` read `--model` from
//! `s3://`.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TIMEOUT, run_command, run_ok, tempdir};
use s3::{Faults, SECRET_KEY, Server, bucket_dataset, http_server, run_s3, s3_server};

#[test]
fn sigkill_and_resume_auto_on_s3_data_end_bit_identical() {
    let root = tempdir();
    bucket_dataset(root.path(), 60_000, 5_000);
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let reference = out.path().join("reference.json");
    let checkpoints = out.path().join("ck");
    let args = |model: &Path, checkpoints: Option<&Path>| {
        let mut args: Vec<String> = [
            "train",
            "s3://bucket/data",
            "--batch-size",
            "1",
            "--epochs",
            "6",
            "--lr",
            "0.01",
            "--shuffle-buffer",
            "5000",
            "--fetch-ahead-bytes",
            "300000",
            "--no-eval",
            "--quiet",
            "--save-model",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(model.to_str().unwrap().to_string());
        if let Some(dir) = checkpoints {
            args.extend(["--checkpoint-dir".to_string(), dir.to_str().unwrap().into()]);
            args.extend(["--checkpoint-every", "5000", "--resume", "auto"].map(String::from));
        }
        args
    };
    let started = Instant::now();
    let reference_args = args(&reference, None);
    let reference_args: Vec<&str> = reference_args.iter().map(String::as_str).collect();
    run_s3(&server, &reference_args).ok();
    let reference_ms = started.elapsed().as_millis() as u64;
    let resumed = args(&model, Some(&checkpoints));
    let resumed: Vec<&str> = resumed.iter().map(String::as_str).collect();
    // Five kills at moments spread over the run (each run lives 1/12 to 1/6 of it), then the
    // run finishes.
    let mut kills = 0;
    for i in 0..100u64 {
        let mut command = server.command(&resumed, SECRET_KEY);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(reference_ms / 12 + (i * 37) % (reference_ms / 12 + 1));
        let started = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                let stderr = common::child_stderr(&mut child);
                assert!(status.success(), "a resume failed: {stderr}");
                assert!(!stderr.contains(SECRET_KEY), "{stderr}");
                break true;
            }
            if kills < 5 && started.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
    }
    assert_eq!(kills, 5);
    assert!(
        std::fs::read(&model).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed model differs from the uninterrupted run"
    );
}

/// The `memory budget: X MB` figure that `train` prints.
fn printed_budget_mb(server: &Server, fetch_ahead: &str) -> f64 {
    let out = run_s3(
        server,
        &[
            "train",
            "s3://bucket/data",
            "--epochs",
            "1",
            "--fetch-ahead-bytes",
            fetch_ahead,
        ],
    )
    .ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with("memory budget: "))
        .unwrap_or_else(|| panic!("no memory budget line in {text}"));
    line["memory budget: ".len()..]
        .split(" MB")
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_printed_memory_budget_counts_the_fetch_budget() {
    let root = tempdir();
    bucket_dataset(root.path(), 4_000, 500);
    let server = s3_server(root.path(), Faults::default());
    let small = printed_budget_mb(&server, "1");
    let large = printed_budget_mb(&server, "200000000");
    let grown = large - small;
    assert!((199.8..=200.2).contains(&grown), "{small} MB → {large} MB");
}

#[test]
fn scan_and_tune_take_s3_urls() {
    let root = tempdir();
    bucket_dataset(root.path(), 4_000, 500);
    let local = root.path().join("bucket/data");
    let server = s3_server(root.path(), Faults::default());
    let scan = |out: common::Outcome| -> serde_json::Value {
        serde_json::from_str(&out.stdout).expect("scan --json")
    };
    let remote = scan(run_s3(&server, &["scan", "s3://bucket/data", "--json"]).ok());
    let on_disk = scan(run_ok(&["scan", local.to_str().unwrap(), "--json"]));
    assert_eq!(remote["rows"], 4000, "{remote}");
    assert_eq!(remote["rows"], on_disk["rows"]);
    let tuned = run_s3(
        &server,
        &[
            "tune",
            "s3://bucket/data",
            "--budget-seconds",
            "1",
            "--batch-sizes",
            "16,64",
            "--prefetch-depths=0,2",
            "--readers-list",
            "1",
            "--quiet",
            "--json",
        ],
    )
    .ok();
    let result: serde_json::Value = serde_json::from_str(&tuned.stdout).expect("tune --json");
    let command = result["command"].as_str().expect("a command");
    assert!(
        command.starts_with("streamfit train s3://bucket/data "),
        "{command}"
    );
}

#[test]
fn a_presigned_query_reaches_neither_a_checkpoint_nor_tunes_command() {
    let dir = tempdir();
    bucket_dataset(dir.path(), 4_000, 500);
    let data = dir.path().join("bucket/data");
    let server = http_server(&data);
    let url = format!(
        "{}/part-00000.parquet?X-Amz-Signature=SECRETSIG",
        server.endpoint()
    );
    let out = tempdir();
    let checkpoints = out.path().join("ck");
    let shown = run_ok(&[
        "train",
        &url,
        "--epochs",
        "2",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
        "--checkpoint-every",
        "5",
    ]);
    assert!(!shown.stdout.contains("SECRETSIG") && !shown.stderr.contains("SECRETSIG"));
    let mut written = 0;
    for entry in std::fs::read_dir(&checkpoints).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        written += 1;
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRETSIG"),
            "{} holds the signature",
            entry.path().display()
        );
    }
    assert!(written > 0, "no checkpoint was written");
    let tuned = run_ok(&[
        "tune",
        &url,
        "--budget-seconds",
        "1",
        "--batch-sizes",
        "16,64",
        "--prefetch-depths=0,2",
        "--readers-list",
        "1",
    ]);
    assert!(
        !tuned.stdout.contains("SECRETSIG") && !tuned.stderr.contains("SECRETSIG"),
        "{}",
        tuned.stdout
    );
    let expected = format!("streamfit train {}/part-00000.parquet", server.endpoint());
    assert!(tuned.stdout.contains(&expected), "{}", tuned.stdout);
}

/// Runs the binary with only `env` as credentials (every cloud variable of the test
/// environment removed), failing fast (no retries, a short timeout).
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> common::Outcome {
    let mut command = Command::new(common::binary());
    command
        .args(args)
        .args(["--io-retries", "0", "--io-timeout", "2"]);
    for (key, _) in std::env::vars() {
        if ["AWS_", "GOOGLE_", "AZURE_"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    run_command(command, TIMEOUT)
}

#[test]
fn gcs_and_azure_fail_clearly_without_printing_a_secret() {
    let secret = "GcsAzureSecret-Not-Printed-42";
    // GCS: a service-account file that is not there, and one that holds no key.
    let dir = tempdir();
    let bad_key = dir.path().join("key.json");
    std::fs::write(&bad_key, format!("{{\"private_key\": \"{secret}\"}}")).unwrap();
    for credentials in [dir.path().join("missing.json"), bad_key] {
        let err = run_with_env(
            &["train", "-q", "gs://some-bucket/data/part-0.parquet"],
            &[(
                "GOOGLE_APPLICATION_CREDENTIALS",
                credentials.to_str().unwrap(),
            )],
        )
        .fails_with(2);
        assert!(
            err.contains("gs://some-bucket/data/part-0.parquet"),
            "{err}"
        );
        assert!(!err.contains(secret), "{err}");
    }
    // Azure: an account and key, against an endpoint on 127.0.0.1 where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let key = "R2NzQXp1cmVTZWNyZXQtTm90LVByaW50ZWQtNDI=";
    let err = run_with_env(
        &["train", "-q", "az://container/data/"],
        &[
            ("AZURE_STORAGE_ACCOUNT_NAME", "devaccount"),
            ("AZURE_STORAGE_ACCOUNT_KEY", key),
            ("AZURE_STORAGE_ENDPOINT", &endpoint),
            ("AZURE_ALLOW_HTTP", "true"),
        ],
    )
    .fails_with(2);
    assert!(err.contains("az://container/data"), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert!(!err.contains(key), "{err}");
    // Azure without an account name cannot even be set up: a clear `data` error.
    let err = run_with_env(&["train", "-q", "az://container/data/"], &[]).fails_with(2);
    assert!(err.contains("az://container/data"), "{err}");
}

#[test]
fn the_model_report_and_predictions_can_be_written_to_s3() {
    let root = tempdir();
    bucket_dataset(root.path(), 4_000, 500);
    let local = root.path().join("bucket/data");
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let local_model = model.to_str().unwrap();
    let train = |model: &str, report: &str| {
        run_s3(
            &server,
            &[
                "train",
                "-q",
                "s3://bucket/data",
                "--epochs",
                "1",
                "--save-model",
                model,
                "--report",
                report,
            ],
        )
        .ok();
    };
    train(
        local_model,
        out.path().join("report.json").to_str().unwrap(),
    );
    train("s3://bucket/out/model.json", "s3://bucket/out/report.json");
    // The objects are the server's files: the same model, and a report.
    let stored = root.path().join("bucket/out");
    assert_eq!(
        std::fs::read(stored.join("model.json")).unwrap(),
        std::fs::read(&model).unwrap()
    );
    let report = common::read_json(&stored.join("report.json"));
    assert_eq!(report["rows_per_epoch"], 4000, "{report}");
    // Predictions to s3:// equal predictions to a local file.
    let predict = |to: &str| {
        run_s3(
            &server,
            &[
                "predict",
                "-q",
                "--model",
                local_model,
                local.to_str().unwrap(),
                "--out",
                to,
            ],
        )
        .ok();
    };
    let local_predictions = out.path().join("p.parquet");
    predict(local_predictions.to_str().unwrap());
    predict("s3://bucket/out/p.parquet");
    let batches = common::read_parquet(&stored.join("p.parquet"));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 4000);
    assert_eq!(batches, common::read_parquet(&local_predictions));
    // Streamed files stay local, refused before training; so is http(s)://.
    for (flag, url) in [
        ("--checkpoint-dir", "http://127.0.0.1:9/ck?sig=SECRETSIG"),
        ("--metrics", "s3://bucket/out/metrics.jsonl"),
        (
            "--save-model",
            "http://127.0.0.1:9/model.json?sig=SECRETSIG",
        ),
    ] {
        let err = run_s3(&server, &["train", "-q", "s3://bucket/data", flag, url]).fails_with(2);
        assert!(err.contains(flag), "{err}");
        assert!(!err.contains("SECRETSIG"), "{err}");
    }
    assert!(!Path::new("s3:").exists(), "a local s3: directory was made");
}

#[test]
fn predict_and_eval_read_the_model_from_s3() {
    let root = tempdir();
    bucket_dataset(root.path(), 2_000, 500);
    let local = root.path().join("bucket/data");
    let local = local.to_str().unwrap();
    let server = s3_server(root.path(), Faults::default());
    let out = tempdir();
    let model = out.path().join("model.json");
    let model = model.to_str().unwrap();
    run_s3(
        &server,
        &["train", "-q", local, "--epochs", "1", "--save-model", model],
    )
    .ok();
    std::fs::create_dir_all(root.path().join("bucket/models")).unwrap();
    std::fs::copy(model, root.path().join("bucket/models/m.json")).unwrap();
    let remote = "s3://bucket/models/m.json";
    // The same predictions and the same evaluation from either copy of the model.
    let predict = |model: &str, to: &Path| {
        let to = to.to_str().unwrap();
        run_s3(
            &server,
            &["predict", "-q", "--model", model, local, "--out", to],
        )
        .ok();
        common::read_parquet(Path::new(to))
    };
    let from_local = predict(model, &out.path().join("local.parquet"));
    assert_eq!(from_local.iter().map(|b| b.num_rows()).sum::<usize>(), 2000);
    assert_eq!(
        predict(remote, &out.path().join("remote.parquet")),
        from_local
    );
    let eval = |model: &str| {
        run_s3(&server, &["eval", "--model", model, local])
            .ok()
            .stdout
    };
    assert_eq!(eval(remote), eval(model));
    // A missing object is a clear error naming it, exit code 2.
    let err = run_s3(
        &server,
        &[
            "predict",
            "-q",
            "--model",
            "s3://bucket/models/none.json",
            local,
            "--out",
            out.path().join("none.parquet").to_str().unwrap(),
        ],
    )
    .fails_with(2);
    assert!(err.contains("s3://bucket/models/none.json"), "{err}");
    assert!(err.contains("404"), "{err}");
}
