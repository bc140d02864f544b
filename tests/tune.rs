//! `tune` measures τ_f and τ_d with a good linear fit, a mini-batch variance falling like 1/b,
//! and recommends flags that `train` accepts.

mod common;

use serde_json::Value;
use streamfit::generate::Task;

#[test]
fn tune_fits_the_cost_model_and_its_recommended_flags_run() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 100_000, 8, 2, 10_000, 4);
    let out = common::run_ok(&[
        "tune",
        data.to_str().unwrap(),
        "--json",
        "--budget-seconds",
        "6",
    ]);
    let result: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    assert!(num(&result["tau_f"]) > 0.0, "tau_f {}", result["tau_f"]);
    assert!(num(&result["tau_d"]) > 0.0, "tau_d {}", result["tau_d"]);
    assert!(
        num(&result["r_squared"]) >= 0.9,
        "R² {}",
        result["r_squared"]
    );
    let slope = num(&result["noise"]["slope"]);
    assert!((-1.2..=-0.8).contains(&slope), "variance slope {slope}");
    assert!(num(&result["noise"]["b_noise"]) > 0.0);
    let batch = result["recommended_batch_size"]
        .as_u64()
        .expect("a batch size");
    assert!((1..=4096).contains(&batch));
    assert!(result["recommended_prefetch"].as_u64().is_some());
    let flags = result["flags"].as_str().unwrap();
    let mut args = vec!["train", data.to_str().unwrap(), "--quiet", "--epochs", "1"];
    args.extend(flags.split_whitespace());
    common::run_ok(&args);
}
