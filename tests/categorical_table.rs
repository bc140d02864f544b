//! Issue 15's acceptance table: a customer table as pandas writes one (an id string, a city
//! string with nulls, a plan as a dictionary column, a DECIMAL(12,2) price, a float64 discount
//! with NaN, an int64 count with nulls, a timestamp[us, tz=UTC], a boolean, a pandas index
//! column) and a 0/1 label drawn from a known logistic model over the encoded features.
//! Training with `--categorical auto --fill-nulls mean --null-indicators --standardize` gets
//! a held-out log loss within 0.01 of the known model's, and `predict` on the raw test file
//! matches this test's own transform of the raw columns (from the saved model's fills,
//! vocabularies, means and standard deviations, in f64) to 1e-5.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Float64Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// SplitMix64: the test's own seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CITIES: [&str; 6] = ["Paris", "Lyon", "Nice", "Lille", "Brest", "Metz"];
const CITY_WEIGHTS: [f64; 6] = [0.8, -0.6, 0.3, -0.2, 1.0, -1.1];
const PLANS: [&str; 3] = ["free", "pro", "team"];
const PLAN_WEIGHTS: [f64; 3] = [-0.7, 0.4, 0.9];
/// 2021-01-01T00:00:00Z in seconds.
const START_S: f64 = 1_609_459_200.0;
const SPAN_S: f64 = 3.0 * 365.0 * 86_400.0;

/// One customer's raw values.
struct Row {
    city: Option<usize>,
    plan: usize,
    price_cents: i128,
    discount: f64,
    visits: Option<i64>,
    signup_us: i64,
    active: bool,
}

impl Row {
    fn draw(rng: &mut Rng) -> Row {
        let city = if rng.uniform() < 0.05 {
            None
        } else {
            // Skewed frequencies: Paris most common, Metz least.
            let u = rng.uniform();
            Some((u * u * 6.0) as usize)
        };
        Row {
            city,
            plan: {
                // free most common, then pro, then team.
                let u = rng.uniform();
                (u * u * 3.0) as usize
            },
            price_cents: 1_000 + (rng.uniform() * 499_000.0) as i128,
            discount: if rng.uniform() < 0.1 {
                f64::NAN
            } else {
                rng.uniform() * 0.5
            },
            visits: (rng.uniform() >= 0.08).then(|| (rng.uniform() * 50.0) as i64),
            signup_us: ((START_S + rng.uniform() * SPAN_S) * 1e6) as i64,
            active: rng.uniform() < 0.6,
        }
    }

    /// The known model's log-odds.
    fn logit(&self) -> f64 {
        let city = self.city.map_or(0.5, |c| CITY_WEIGHTS[c]);
        let price = 0.0008 * (self.price_cents as f64 / 100.0 - 2_500.0);
        let discount = if self.discount.is_nan() {
            0.4
        } else {
            3.0 * (self.discount - 0.25)
        };
        let visits = self.visits.map_or(-0.3, |v| 0.05 * (v as f64 - 25.0));
        let signup = 0.6 * ((self.signup_us as f64 / 1e6 - START_S) / SPAN_S - 0.5) * 2.0;
        -0.3 + city
            + PLAN_WEIGHTS[self.plan]
            + price
            + discount
            + visits
            + signup
            + if self.active { 0.7 } else { 0.0 }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Writes `rows` with labels drawn from the known model; returns the labels.
fn write_table(path: &Path, rows: &[Row], first_index: i64, rng: &mut Rng) -> Vec<i64> {
    let labels: Vec<i64> = rows
        .iter()
        .map(|r| i64::from(rng.uniform() < sigmoid(r.logit())))
        .collect();
    let n = rows.len() as i64;
    let plan: DictionaryArray<Int32Type> = rows.iter().map(|r| PLANS[r.plan]).collect();
    common::write_columns(
        path,
        vec![
            (
                "__index_level_0__",
                Arc::new(Int64Array::from_iter_values(first_index..first_index + n)) as ArrayRef,
            ),
            (
                "customer_id",
                Arc::new(StringArray::from_iter_values(
                    (first_index..first_index + n).map(|i| format!("c{i:07}")),
                )),
            ),
            (
                "city",
                Arc::new(StringArray::from(
                    rows.iter()
                        .map(|r| r.city.map(|c| CITIES[c]))
                        .collect::<Vec<_>>(),
                )),
            ),
            ("plan", Arc::new(plan)),
            (
                "price",
                Arc::new(
                    Decimal128Array::from_iter_values(rows.iter().map(|r| r.price_cents))
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
            ),
            (
                "discount",
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.discount),
                )),
            ),
            (
                "visits",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.visits).collect::<Vec<_>>(),
                )),
            ),
            (
                "signup",
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.signup_us))
                        .with_timezone("UTC"),
                ),
            ),
            (
                "active",
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.active).collect::<Vec<_>>(),
                )),
            ),
            ("label", Arc::new(Int64Array::from(labels.clone()))),
        ],
    );
    labels
}

/// This test's transform of one raw row into the model's features, from the saved model's
/// fill values and vocabularies (each value rounded to f32, as the decoder writes it).
fn features(model: &serde_json::Value, row: &Row) -> Vec<f64> {
    let fill = |column: &str| {
        model["missing"]["fill"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["column"] == column)
            .map(|f| f["value"].as_f64().unwrap())
            .unwrap()
    };
    let f32_of = |v: f64| f64::from(v as f32);
    let vocabularies = model["categorical"]["encoding"]["one_hot"]
        .as_array()
        .unwrap();
    let one_hot = |column: &str, value: Option<&str>, feature: &str| {
        let vocabulary = vocabularies.iter().find(|v| v["column"] == column).unwrap();
        let known = |v: &str| {
            vocabulary["values"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == v)
        };
        let has_null = vocabulary["null"] == true;
        let slot = match value {
            Some(v) if known(v) => v.to_string(),
            None if has_null => "<null>".to_string(),
            _ => "<other>".to_string(),
        };
        f64::from(u8::from(slot == feature))
    };
    model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| {
            let name = name.as_str().unwrap();
            match name {
                "price" => f32_of(row.price_cents as f64 / 100.0),
                "discount" if row.discount.is_nan() => f32_of(fill("discount")),
                "discount" => f32_of(row.discount),
                "visits" => f32_of(row.visits.map_or_else(|| fill("visits"), |v| v as f64)),
                "signup" => f32_of(row.signup_us as f64 / 1e6),
                "active" => f64::from(u8::from(row.active)),
                "discount_is_null" => f64::from(u8::from(row.discount.is_nan())),
                "visits_is_null" => f64::from(u8::from(row.visits.is_none())),
                other => {
                    let (column, value) = other.split_once('=').expect("a one-hot feature");
                    match column {
                        "city" => one_hot("city", row.city.map(|c| CITIES[c]), value),
                        "plan" => one_hot("plan", Some(PLANS[row.plan]), value),
                        _ => panic!("unexpected feature {other}"),
                    }
                }
            }
        })
        .collect()
}

fn log_loss(labels: &[i64], p: impl Iterator<Item = f64>) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(p)
        .map(|(&y, p)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / labels.len() as f64
}

#[test]
fn a_customer_table_trains_to_the_known_models_loss_and_predict_matches_a_reference_transform() {
    let dir = common::tempdir();
    let mut rng = Rng(15);
    let train_rows: Vec<Row> = (0..40_000).map(|_| Row::draw(&mut rng)).collect();
    let test_rows: Vec<Row> = (0..10_000).map(|_| Row::draw(&mut rng)).collect();
    let train = dir.path().join("train.parquet");
    let test = dir.path().join("test.parquet");
    write_table(&train, &train_rows, 0, &mut rng);
    let test_labels = write_table(&test, &test_rows, 40_000, &mut rng);

    let model = dir.path().join("model.json");
    let out = common::run_ok(&[
        "train",
        s(&train),
        "--model",
        "logistic",
        "--categorical",
        "auto",
        "--exclude",
        "customer_id",
        "--fill-nulls",
        "mean",
        "--null-indicators",
        "--standardize",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--epochs",
        "10",
        "--batch-size",
        "256",
        "--save-model",
        s(&model),
    ]);
    assert!(
        out.stdout
            .contains("categorical: vocabularies over 40,000 rows")
            && out.stdout.contains("city 6 values of ~6 distinct")
            && out.stdout.contains("plan 3 values of ~3 distinct"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not used: __index_level_0__") && out.stdout.contains("customer_id"),
        "{}",
        out.stdout
    );
    let saved = common::read_json(&model);
    // Trained standardised: version 6, the parameters as learned, in the standardised space.
    assert_eq!(saved["version"], 6);
    assert_eq!(
        saved["features"],
        serde_json::json!([
            "price",
            "discount",
            "visits",
            "signup",
            "active",
            "discount_is_null",
            "visits_is_null",
            "city=Paris",
            "city=Lyon",
            "city=Nice",
            "city=Lille",
            "city=Brest",
            "city=Metz",
            "city=<other>",
            "city=<null>",
            "plan=free",
            "plan=pro",
            "plan=team",
            "plan=<other>"
        ])
    );
    // One-hot features are not standardised.
    let standardization = &saved["standardization"];
    for j in 7..19 {
        assert_eq!(standardization["mean"][j], 0.0, "feature {j}");
        assert_eq!(standardization["std"][j], 1.0, "feature {j}");
    }

    let predictions = dir.path().join("p.parquet");
    common::run_ok(&[
        "predict",
        "--model",
        s(&model),
        s(&test),
        "--out",
        s(&predictions),
    ]);
    let scores = common::f32_column(&common::read_parquet(&predictions), "probability");
    assert_eq!(scores.len(), test_rows.len());
    let w: Vec<f64> = saved["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| f64::from(v.as_f64().unwrap() as f32))
        .collect();
    let b = f64::from(saved["bias"].as_f64().unwrap() as f32);
    for (i, (row, score)) in test_rows.iter().zip(&scores).enumerate() {
        let x = common::standardised(&saved, &features(&saved, row));
        let p = sigmoid(x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() + b);
        assert!(
            (p - f64::from(*score)).abs() < 1e-5,
            "row {i}: reference {p}, predict {score}"
        );
    }
    let trained = log_loss(&test_labels, scores.iter().map(|&p| f64::from(p)));
    let known = log_loss(&test_labels, test_rows.iter().map(|r| sigmoid(r.logit())));
    eprintln!("held-out log loss {trained:.4}, the known model's {known:.4}");
    assert!(
        (trained - known).abs() < 0.01,
        "held-out log loss {trained}, the known model's {known}"
    );
}
