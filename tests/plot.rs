//! `train --plot` and `streamfit plot` draw the batch-loss and full-loss curves as SVG; a
//! metrics file that is not JSON lines is a clear error.

mod common;

use streamfit::generate::Task;

fn assert_chart(path: &std::path::Path) {
    let svg = std::fs::read_to_string(path).expect("an SVG file");
    assert!(svg.starts_with("<svg"), "not SVG");
    assert!(svg.matches("<polyline").count() >= 2, "expected two curves");
    assert!(
        svg.contains("batch loss (per iteration)") && svg.contains("full-data loss (per epoch)")
    );
}

#[test]
fn train_and_plot_draw_both_loss_curves() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 20_000, 4, 2, 2_000, 6);
    let (chart, metrics) = (dir.path().join("loss.svg"), dir.path().join("m.jsonl"));
    common::run_ok(&[
        "train",
        data.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
        "--full-loss",
        "--plot",
        chart.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_chart(&chart);

    let again = dir.path().join("again.svg");
    common::run_ok(&[
        "plot",
        metrics.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--log-y",
    ]);
    assert_chart(&again);

    std::fs::write(&metrics, "not json\n").unwrap();
    let stderr = common::run_err(
        &[
            "plot",
            metrics.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
        2,
    );
    assert!(stderr.contains("line 1"), "{stderr}");
}
