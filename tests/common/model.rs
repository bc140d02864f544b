//! Reading a saved model file (JSON) in a test as a user applying it with numpy would: its
//! float fields as the f32 values they hold, and its standardisation.

use serde_json::Value;

/// The numbers of a JSON array, each as the f32 it holds, widened to f64.
pub fn f32s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| f64::from(x.as_f64().unwrap() as f32))
        .collect()
}

/// `x`, a row of decoded features, as a model file's parameters take it: (x − mean) / std in
/// f64 for a version-6 file with a `standardization`, unchanged otherwise (older files hold
/// parameters folded back to the decoded features).
pub fn standardised(model: &Value, x: &[f64]) -> Vec<f64> {
    let s = &model["standardization"];
    if model["version"].as_u64().unwrap() < 6 || s.is_null() {
        return x.to_vec();
    }
    let (mean, std) = (f32s(&s["mean"]), f32s(&s["std"]));
    assert_eq!(mean.len(), x.len(), "a mean per feature");
    x.iter()
        .zip(mean.iter().zip(&std))
        .map(|(x, (m, s))| (x - m) / s)
        .collect()
}
