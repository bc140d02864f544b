//! Models: a loss and its gradient over a chunk of rows, on one flat f32 parameter vector.
//!
//! Layer 1: no knowledge of files or threads. A [`Model`] sums the loss and the gradient over
//! the rows it is given; averaging, chunking and threads are the trainer's business.
//!
//! Two implementations cover the four kinds a user picks with `--model`:
//! - [`LinearModel`] (`linear`, `logistic`): parameters `[w_0 .. w_{d-1}, bias]`, one fused
//!   pass per block of four rows (four dot products sharing the weight loads, the residuals,
//!   then one axpy of the four rows into the gradient), written so the compiler vectorises it
//!   for the baseline target and compiled a second time with AVX2 enabled, picked at run time.
//!   Rust never reassociates or contracts float operations, so both versions give
//!   bit-identical results.
//! - [`network::Network`] (`softmax`, `mlp`): dense layers whose forward and backward passes
//!   over a chunk are matrix products through the `gemm` crate (see `benches/gemm.rs`).
//!   Softmax regression is the network with no hidden layer.
//!
//! Every layout starts with the input layer as a row-major weight matrix `[h × d]` followed by
//! its `h` biases (h = 1 for the linear models), which is what lets standardisation be folded
//! back into the saved parameters for any model ([`Model::input_layer_width`]).

pub mod network;

use serde::{Deserialize, Serialize};

pub use self::network::Network;

/// The models `train` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Linear regression, loss = mean squared error (p − y)².
    Linear,
    /// Logistic regression, loss = binary cross-entropy on logits; labels in {0, 1}.
    Logistic,
    /// Multiclass logistic regression, loss = cross-entropy of the softmax; labels are class
    /// ids 0..K−1.
    Softmax,
    /// A multilayer perceptron with a regression, binary or multiclass head.
    Mlp,
}

/// What a model predicts, and so its loss and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// One value; squared error; RMSE.
    Regression,
    /// One probability; binary cross-entropy; accuracy at 0.5.
    Binary,
    /// K class probabilities; cross-entropy of the softmax; accuracy of the argmax.
    Multiclass(usize),
}

impl Head {
    /// Values predicted per row.
    pub fn outputs(self) -> usize {
        match self {
            Head::Regression | Head::Binary => 1,
            Head::Multiclass(k) => k,
        }
    }

    /// True for a classification head (accuracy is its metric; RMSE otherwise).
    pub fn is_classifier(self) -> bool {
        !matches!(self, Head::Regression)
    }

    /// True when `y` is a valid target: a class id in 0..K for a multiclass head (any finite
    /// value otherwise; the readers already reject non-finite ones).
    pub fn accepts(self, y: f32) -> bool {
        match self {
            Head::Multiclass(k) => y >= 0.0 && y.fract() == 0.0 && (y as usize) < k,
            Head::Regression | Head::Binary => true,
        }
    }
}

/// Hidden-layer non-linearity of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x), with He initialisation.
    #[default]
    Relu,
    /// tanh(x), with Xavier initialisation.
    Tanh,
}

/// Most classes of a multiclass head.
pub const MAX_CLASSES: usize = 65_536;

/// Most parameters of a model (1 GiB of f32), so a mistyped shape is an error, not an
/// allocation failure.
pub const MAX_PARAMS: usize = 1 << 28;

/// Everything that defines a model's shape, given its feature count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The kind the user chose.
    pub kind: ModelKind,
    /// Output head (regression for `linear`, binary for `logistic`, multiclass for `softmax`).
    pub head: Head,
    /// Hidden-layer widths (MLP only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    /// Hidden-layer activation (MLP only).
    #[serde(default)]
    pub activation: Activation,
}

impl ModelSpec {
    /// Linear regression.
    pub fn linear() -> Self {
        Self::simple(ModelKind::Linear, Head::Regression)
    }

    /// Logistic regression.
    pub fn logistic() -> Self {
        Self::simple(ModelKind::Logistic, Head::Binary)
    }

    /// Softmax regression over `classes` classes.
    pub fn softmax(classes: usize) -> Self {
        Self::simple(ModelKind::Softmax, Head::Multiclass(classes))
    }

    /// An MLP with these hidden widths, activation and head.
    pub fn mlp(hidden: Vec<usize>, activation: Activation, head: Head) -> Self {
        ModelSpec {
            kind: ModelKind::Mlp,
            head,
            hidden,
            activation,
        }
    }

    fn simple(kind: ModelKind, head: Head) -> Self {
        ModelSpec {
            kind,
            head,
            hidden: Vec::new(),
            activation: Activation::Relu,
        }
    }

    /// The first setting that cannot be used, as (flag, reason).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Head::Multiclass(k) = self.head
            && !(2..=MAX_CLASSES).contains(&k)
        {
            return Some((
                "classes",
                format!("must be between 2 and {MAX_CLASSES}, got {k}"),
            ));
        }
        if self.kind == ModelKind::Mlp {
            if self.hidden.is_empty() {
                return Some(("hidden", "an MLP needs at least one hidden layer".into()));
            }
            if self.hidden.iter().any(|&h| h == 0 || h > 1 << 16) {
                return Some(("hidden", "widths must be between 1 and 65536".into()));
            }
        }
        None
    }

    /// A short description, e.g. `mlp 64,32 relu (binary)`.
    pub fn describe(&self) -> String {
        let head = match self.head {
            Head::Regression => "regression".to_string(),
            Head::Binary => "binary".to_string(),
            Head::Multiclass(k) => format!("{k} classes"),
        };
        match self.kind {
            ModelKind::Linear | ModelKind::Logistic => format!("{:?}", self.kind).to_lowercase(),
            ModelKind::Softmax => format!("softmax ({head})"),
            ModelKind::Mlp => format!(
                "mlp {} {:?} ({head})",
                self.hidden
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                self.activation
            )
            .to_lowercase(),
        }
    }

    /// The model on `num_features` features.
    pub fn build(&self, num_features: usize) -> Box<dyn Model> {
        match self.kind {
            ModelKind::Linear | ModelKind::Logistic => {
                Box::new(LinearModel::new(self.kind, num_features))
            }
            ModelKind::Softmax | ModelKind::Mlp => Box::new(Network::new(
                num_features,
                &self.hidden,
                self.activation,
                self.head,
            )),
        }
    }
}

/// A differentiable model over rows of `num_features` f32 features.
///
/// Contract: `features` is row-major with `targets.len()` rows; `grad` has
/// [`Model::num_params`] entries, and the summed (not averaged) gradient is added to it.
/// Targets have passed [`Head::accepts`].
pub trait Model: Send + Sync {
    /// Length of the parameter vector.
    fn num_params(&self) -> usize;
    /// Initial parameters, a pure function of `seed`.
    fn init_params(&self, seed: u64) -> Vec<f32>;
    /// Summed loss over the rows; adds the summed gradient to `grad`.
    fn loss_grad_sum(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        grad: &mut [f32],
    ) -> f64;
    /// Summed loss over the rows.
    fn loss_sum(&self, params: &[f32], features: &[f32], targets: &[f32]) -> f64;
    /// The output head.
    fn head(&self) -> Head;
    /// Predictions of `features`' rows into `out`, `head().outputs()` values per row: a value,
    /// a probability, or K class probabilities.
    fn predict(&self, params: &[f32], features: &[f32], out: &mut [f32]);
    /// [`Model::loss_sum`] and [`Model::predict`] of the same rows (one forward pass where the
    /// model can share it).
    fn loss_and_predict(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        out: &mut [f32],
    ) -> f64 {
        self.predict(params, features, out);
        self.loss_sum(params, features, targets)
    }
    /// For each parameter, true when it is a weight (weight decay applies), false for a bias.
    fn decays(&self) -> Vec<bool>;
    /// Rows h of the input layer's weight matrix `[h × d]` at the start of the parameters.
    fn input_layer_width(&self) -> usize;
    /// f32 values of per-thread scratch the model needs per row of a chunk (activations).
    fn scratch_per_row(&self) -> usize {
        0
    }
}

/// Summed evaluation figures over some rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalSums {
    /// Rows counted.
    pub rows: u64,
    /// Summed loss.
    pub loss: f64,
    /// Correct predictions (classification).
    pub correct: u64,
    /// Summed squared error of the prediction (regression).
    pub squared_error: f64,
}

impl EvalSums {
    /// Adds `other`'s sums.
    pub fn add(&mut self, other: &EvalSums) {
        self.rows += other.rows;
        self.loss += other.loss;
        self.correct += other.correct;
        self.squared_error += other.squared_error;
    }

    /// Loss, then accuracy (classification) or RMSE (regression).
    pub fn metrics(&self, head: Head) -> Metrics {
        let n = self.rows.max(1) as f64;
        Metrics {
            loss: self.loss / n,
            accuracy: head.is_classifier().then(|| self.correct as f64 / n),
            rmse: (!head.is_classifier()).then(|| (self.squared_error / n).sqrt()),
        }
    }
}

/// Mean loss plus accuracy or RMSE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean loss.
    pub loss: f64,
    /// Share of rows classified correctly (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Root mean squared error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
}

/// Loss, accuracy and squared error of `model` over the rows; `scratch` holds predictions.
pub fn eval_sums(
    model: &dyn Model,
    params: &[f32],
    features: &[f32],
    targets: &[f32],
    scratch: &mut Vec<f32>,
) -> EvalSums {
    let head = model.head();
    let k = head.outputs();
    scratch.clear();
    scratch.resize(targets.len() * k, 0.0);
    let mut sums = EvalSums {
        rows: targets.len() as u64,
        loss: model.loss_and_predict(params, features, targets, scratch),
        ..EvalSums::default()
    };
    for (out, &y) in scratch.chunks_exact(k).zip(targets) {
        match head {
            Head::Regression => {
                let e = f64::from(out[0]) - f64::from(y);
                sums.squared_error += e * e;
            }
            Head::Binary => sums.correct += u64::from((out[0] >= 0.5) == (y >= 0.5)),
            Head::Multiclass(_) => sums.correct += u64::from(argmax(out) as f32 == y),
        }
    }
    sums
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A generalised linear model: z = w·x + b, with the loss of `kind`.
#[derive(Debug, Clone, Copy)]
pub struct LinearModel {
    kind: ModelKind,
    num_features: usize,
}

impl LinearModel {
    /// A linear or logistic model on `num_features` features.
    pub fn new(kind: ModelKind, num_features: usize) -> Self {
        assert!(
            matches!(kind, ModelKind::Linear | ModelKind::Logistic),
            "LinearModel is linear or logistic"
        );
        LinearModel { kind, num_features }
    }

    /// The loss kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }
}

impl Model for LinearModel {
    fn num_params(&self) -> usize {
        self.num_features + 1
    }

    fn loss_grad_sum(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        grad: &mut [f32],
    ) -> f64 {
        kernel::run(
            self.kind,
            self.num_features,
            params,
            features,
            targets,
            Some(grad),
        )
    }

    fn loss_sum(&self, params: &[f32], features: &[f32], targets: &[f32]) -> f64 {
        kernel::run(
            self.kind,
            self.num_features,
            params,
            features,
            targets,
            None,
        )
    }

    fn init_params(&self, _seed: u64) -> Vec<f32> {
        // A convex loss: zero is as good a start as any, and needs no seed.
        vec![0.0; self.num_features + 1]
    }

    fn head(&self) -> Head {
        match self.kind {
            ModelKind::Linear => Head::Regression,
            _ => Head::Binary,
        }
    }

    fn predict(&self, params: &[f32], features: &[f32], out: &mut [f32]) {
        let d = self.num_features;
        for (row, o) in features.chunks_exact(d.max(1)).zip(out.iter_mut()) {
            let z = kernel::dot(&params[..d], row) + params[d];
            *o = match self.kind {
                ModelKind::Linear => z,
                _ => sigmoid(z),
            };
        }
    }

    fn decays(&self) -> Vec<bool> {
        let mut decays = vec![true; self.num_features + 1];
        decays[self.num_features] = false;
        decays
    }

    fn input_layer_width(&self) -> usize {
        1
    }
}

/// σ(z) without overflow.
#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    let e = (-z.abs()).exp();
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// Loss of one row and dLoss/dz, from the linear score z and the target y (the linear kind
/// for squared error, any other for binary cross-entropy).
#[inline(always)]
fn loss_and_residual(kind: ModelKind, z: f32, y: f32) -> (f32, f32) {
    match kind {
        ModelKind::Linear => {
            let r = z - y;
            (r * r, 2.0 * r)
        }
        _ => {
            // log(1 + e^z) − y·z = max(z, 0) − y·z + log(1 + e^−|z|), stable for any z, and
            // σ(z) from the same e^−|z| without overflow. ln(1 + e) instead of ln_1p(e): the
            // absolute error is below 1e-7, and in `perf record` of training on 8M × 64 rows
            // `logf` took 1.5% of CPU samples where `log1pf` had taken 8.9%.
            let e = (-z.abs()).exp();
            let loss = z.max(0.0) - y * z + (1.0 + e).ln();
            let p = if z >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            (loss, p - y)
        }
    }
}

mod kernel {
    use super::{ModelKind, loss_and_residual};

    const LANES: usize = 8;

    /// Dispatches to the AVX2 build of the kernel where the CPU has it.
    pub fn run(
        kind: ModelKind,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        grad: Option<&mut [f32]>,
    ) -> f64 {
        assert_eq!(params.len(), d + 1, "parameter vector length");
        assert_eq!(x.len(), y.len() * d, "features and targets disagree");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { run_avx2(kind, d, params, x, y, grad) };
            }
        }
        run_generic(kind, d, params, x, y, grad)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        kind: ModelKind,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        grad: Option<&mut [f32]>,
    ) -> f64 {
        run_generic(kind, d, params, x, y, grad)
    }

    #[inline(always)]
    fn run_generic(
        kind: ModelKind,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        mut grad: Option<&mut [f32]>,
    ) -> f64 {
        let (w, bias) = (&params[..d], params[d]);
        let n = y.len();
        let mut loss_sum = 0.0f64;
        let mut i = 0;
        while i + 4 <= n {
            let rows = [
                &x[i * d..(i + 1) * d],
                &x[(i + 1) * d..(i + 2) * d],
                &x[(i + 2) * d..(i + 3) * d],
                &x[(i + 3) * d..(i + 4) * d],
            ];
            let z = dot4(w, rows);
            let mut r = [0.0f32; 4];
            for k in 0..4 {
                let (loss, residual) = loss_and_residual(kind, z[k] + bias, y[i + k]);
                loss_sum += f64::from(loss);
                r[k] = residual;
            }
            if let Some(g) = grad.as_deref_mut() {
                let (gw, gb) = g.split_at_mut(d);
                for (j, gj) in gw.iter_mut().enumerate() {
                    *gj += r[0] * rows[0][j]
                        + r[1] * rows[1][j]
                        + r[2] * rows[2][j]
                        + r[3] * rows[3][j];
                }
                gb[0] += (r[0] + r[1]) + (r[2] + r[3]);
            }
            i += 4;
        }
        while i < n {
            let row = &x[i * d..(i + 1) * d];
            let (loss, residual) = loss_and_residual(kind, dot(w, row) + bias, y[i]);
            loss_sum += f64::from(loss);
            if let Some(g) = grad.as_deref_mut() {
                let (gw, gb) = g.split_at_mut(d);
                for (gj, xj) in gw.iter_mut().zip(row) {
                    *gj += residual * xj;
                }
                gb[0] += residual;
            }
            i += 1;
        }
        loss_sum
    }

    /// Sum of eight lanes in a fixed tree order.
    #[inline(always)]
    fn reduce(acc: [f32; LANES]) -> f32 {
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
    }

    /// Dot product with eight independent accumulators (vectorises without reassociation).
    #[inline(always)]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let (a_chunks, a_tail) = a.as_chunks::<LANES>();
        let (b_chunks, b_tail) = b.as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for (ac, bc) in a_chunks.iter().zip(b_chunks) {
            for k in 0..LANES {
                acc[k] += ac[k] * bc[k];
            }
        }
        let mut sum = reduce(acc);
        for (p, q) in a_tail.iter().zip(b_tail) {
            sum += p * q;
        }
        sum
    }

    /// Four dot products against one weight vector, sharing its loads. Each equals `dot`.
    #[inline(always)]
    fn dot4(w: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
        let (w_chunks, w_tail) = w.as_chunks::<LANES>();
        let split = w_chunks.len() * LANES;
        let mut acc = [[0.0f32; LANES]; 4];
        for (c, wc) in w_chunks.iter().enumerate() {
            for (r, row) in rows.iter().enumerate() {
                let xc = &row[c * LANES..(c + 1) * LANES];
                for k in 0..LANES {
                    acc[r][k] += wc[k] * xc[k];
                }
            }
        }
        let mut out = [0.0f32; 4];
        for (r, row) in rows.iter().enumerate() {
            let mut sum = reduce(acc[r]);
            for (p, q) in w_tail.iter().zip(&row[split..]) {
                sum += p * q;
            }
            out[r] = sum;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 reference of the summed loss and gradient.
    fn reference(kind: ModelKind, params: &[f32], x: &[f32], y: &[f32]) -> (f64, Vec<f64>) {
        let d = params.len() - 1;
        let mut grad = vec![0.0f64; d + 1];
        let mut loss = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            let z: f64 = row
                .iter()
                .zip(params)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
                + f64::from(params[d]);
            let yi = f64::from(yi);
            let (l, r) = match kind {
                ModelKind::Linear => ((z - yi).powi(2), 2.0 * (z - yi)),
                _ => {
                    let p = 1.0 / (1.0 + (-z).exp());
                    ((1.0 + z.exp()).ln() - yi * z, p - yi)
                }
            };
            loss += l;
            for j in 0..d {
                grad[j] += r * f64::from(row[j]);
            }
            grad[d] += r;
        }
        (loss, grad)
    }

    #[test]
    fn kernel_matches_f64_reference_for_odd_shapes() {
        for kind in [ModelKind::Linear, ModelKind::Logistic] {
            for (d, n) in [(1, 1), (3, 7), (8, 4), (13, 9), (64, 33)] {
                let params: Vec<f32> = (0..=d).map(|j| ((j * 7 % 5) as f32 - 2.0) * 0.1).collect();
                let x: Vec<f32> = (0..n * d)
                    .map(|k| ((k * 13 % 11) as f32 - 5.0) * 0.2)
                    .collect();
                let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
                let model = LinearModel::new(kind, d);
                let mut grad = vec![0.0f32; d + 1];
                let loss = model.loss_grad_sum(&params, &x, &y, &mut grad);
                let (ref_loss, ref_grad) = reference(kind, &params, &x, &y);
                assert!(
                    (loss - ref_loss).abs() <= 1e-4 * (1.0 + ref_loss.abs()),
                    "{kind:?} d={d} n={n}"
                );
                assert!((model.loss_sum(&params, &x, &y) - loss).abs() < 1e-9);
                for (g, r) in grad.iter().zip(&ref_grad) {
                    assert!(
                        (f64::from(*g) - r).abs() <= 1e-4 * (1.0 + r.abs()),
                        "{kind:?} d={d} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn logistic_loss_is_finite_for_extreme_logits() {
        for z in [-1e4f32, -50.0, 0.0, 50.0, 1e4] {
            for y in [0.0, 1.0] {
                let (loss, r) = loss_and_residual(ModelKind::Logistic, z, y);
                assert!(loss.is_finite() && r.is_finite(), "z={z} y={y}");
            }
        }
    }
}
