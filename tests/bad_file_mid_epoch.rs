//! `--on-bad-file skip` and a Parquet file whose footer is fine but one of its row groups is
//! damaged (issue 14, item 1): training goes on without the file from the failing row group's
//! plan position on, counts the rows it skipped in the epoch line and the report, leaves the
//! file out of later epochs, and trains the same model whatever the reader count.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use streamfit::generate::Task;

/// Overwrites the first page header of row group `row_group`'s first column in `path`: the
/// footer still parses, so the damage is found only when that row group is read.
fn damage_row_group(path: &Path, row_group: usize) {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let column = reader.metadata().row_group(row_group).column(0);
    let offset = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset());
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset as u64)).unwrap();
    file.write_all(&[0xAB; 64]).unwrap();
}

#[test]
fn a_row_group_failing_mid_epoch_drops_its_file_from_there_on() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    // 4 files × 4 row groups of 500 rows.
    common::dataset(&data, Task::Logistic, 8_000, 4, 4, 500, 14);
    let victim = data.join("part-00002.parquet");
    damage_row_group(&victim, 2);
    let train = |readers: &str| {
        let report = dir.path().join(format!("report-{readers}.json"));
        let model = dir.path().join(format!("model-{readers}.json"));
        let out = common::run_ok(&[
            "train",
            data.to_str().unwrap(),
            "--on-bad-file",
            "skip",
            "--epochs",
            "3",
            "--batch-size",
            "100",
            "--threads",
            "1",
            "--readers",
            readers,
            "--report",
            report.to_str().unwrap(),
            "--save-model",
            model.to_str().unwrap(),
        ]);
        (
            out,
            common::read_json(&report),
            std::fs::read(&model).unwrap(),
        )
    };
    let (out, report, model) = train("1");
    let epochs = report["epoch_summaries"].as_array().unwrap();
    let first = &epochs[0];
    let skipped = first["rows_skipped"].as_u64().expect("rows skipped");
    // At least the damaged row group, at most the whole file.
    assert!((500..=2_000).contains(&skipped), "{first}");
    assert_eq!(first["rows"].as_u64().unwrap() + skipped, 8_000);
    let dropped = &first["files_dropped"][0];
    assert!(
        dropped["path"]
            .as_str()
            .unwrap()
            .ends_with("part-00002.parquet"),
        "{dropped}"
    );
    assert_eq!(dropped["row_group"], 2);
    assert_eq!(dropped["rows_delivered"], 0);
    for later in &epochs[1..] {
        assert_eq!(later["rows"], 6_000, "{later}");
        assert_eq!(later["iterations"], 60);
        assert!(later.get("rows_skipped").is_none(), "{later}");
    }
    assert!(
        out.stdout.contains("rows skipped (1 file(s) dropped)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("warning: dropping") && out.stderr.contains("part-00002.parquet"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // The same batches, so the same model, whatever the reader count.
    for readers in ["2", "4"] {
        let (_, other, other_model) = train(readers);
        assert_eq!(other["epoch_summaries"][0]["rows_skipped"], skipped);
        assert!(
            other_model == model,
            "{readers} readers trained another model"
        );
    }
}
