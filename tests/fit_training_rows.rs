//! The fitted preprocessing (one-hot vocabularies, `--fill-nulls mean` means) comes from the
//! training rows only: the units `--valid-fraction` holds out and the rows
//! `--drop-null-labels` leaves out are never counted, whatever `--readers`.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use parquet::file::properties::WriterProperties;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

const UNITS: usize = 4;
const UNIT_ROWS: usize = 100;

/// Row `i` of unit `u`: its city, its `x` (None: null) and its label (None: null).
fn row(u: usize, i: usize) -> (String, Option<f64>, Option<f64>) {
    if i % 25 == 3 {
        // A null label: a city seen nowhere else and a huge x, both left out of the fit.
        return ("ghost".to_string(), Some(1_000.0), None);
    }
    let city = match i % 20 {
        0 => format!("only_{u}"),
        k if k % 2 == 0 => "common_a".to_string(),
        _ => "common_b".to_string(),
    };
    let x = (i % 9 != 4).then(|| (u * 10 + i % 7) as f64);
    (city, x, Some((i % 2) as f64))
}

/// One file of [`UNITS`] row groups of [`UNIT_ROWS`] rows.
fn write_table(path: &Path) {
    let (mut city, mut x, mut label) = (vec![], vec![], vec![]);
    for u in 0..UNITS {
        for i in 0..UNIT_ROWS {
            let (c, v, y) = row(u, i);
            city.push(c);
            x.push(v);
            label.push(y);
        }
    }
    let batch = RecordBatch::try_from_iter(vec![
        ("city", Arc::new(StringArray::from(city)) as ArrayRef),
        ("x", Arc::new(Float64Array::from(x))),
        ("label", Arc::new(Float64Array::from(label))),
    ])
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(UNIT_ROWS))
        .build();
    common::write_parquet(path, &batch, Some(props));
}

/// Trains with a quarter of the units held out; returns the model and the held-out units.
fn train(dir: &Path, data: &Path, readers: &str) -> (serde_json::Value, Vec<usize>) {
    let model = dir.join(format!("model-{readers}.json"));
    let report = dir.join(format!("report-{readers}.json"));
    common::run_ok(&[
        "train",
        s(data),
        "-q",
        "--model",
        "logistic",
        "--categorical",
        "city",
        "--fill-nulls",
        "mean",
        "--drop-null-labels",
        "--valid-fraction",
        "0.25",
        "--seed",
        "4",
        "--readers",
        readers,
        "--save-model",
        s(&model),
        "--report",
        s(&report),
    ]);
    let held: Vec<usize> = common::read_json(&report)["held_out"]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_u64().unwrap() as usize)
        .collect();
    (common::read_json(&model), held)
}

#[test]
fn the_fit_leaves_out_held_out_units_and_null_label_rows_for_any_reader_count() {
    let dir = common::tempdir();
    let data = dir.path().join("t.parquet");
    write_table(&data);
    let (model, held) = train(dir.path(), &data, "1");
    assert_eq!(held.len(), 1, "round(0.25 × 4) units");
    let features: Vec<&str> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for u in 0..UNITS {
        let name = format!("city=only_{u}");
        // A category present only in the held-out unit gets no column (it goes to <other>).
        assert_eq!(
            features.contains(&name.as_str()),
            !held.contains(&u),
            "{name} with unit {held:?} held out: {features:?}"
        );
    }
    assert!(features.contains(&"city=<other>"), "{features:?}");
    assert!(
        !features.contains(&"city=ghost"),
        "a null-label row's city: {features:?}"
    );

    // The fill mean of x: the mean of its present values over the training units' rows
    // with a label.
    let (mut sum, mut count) = (0.0, 0u64);
    for u in (0..UNITS).filter(|u| !held.contains(u)) {
        for i in 0..UNIT_ROWS {
            if let (_, Some(x), Some(_)) = row(u, i) {
                sum += x;
                count += 1;
            }
        }
    }
    let expected = sum / count as f64;
    let fill = model["missing"]["fill"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["column"] == "x")
        .unwrap_or_else(|| panic!("no fill of x: {model}"))["value"]
        .as_f64()
        .unwrap();
    assert!(
        (fill - expected).abs() < 1e-9 * expected,
        "fill {fill}, mean over training rows {expected}"
    );

    // A pure function of the data and the settings.
    let (again, held_again) = train(dir.path(), &data, "3");
    assert_eq!(held_again, held);
    assert_eq!(again, model);
}
