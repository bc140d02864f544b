//! Generalised linear models, z = w·x + b: linear regression (`linear`, squared error) and
//! logistic regression (`logistic`, binary cross-entropy), with their two registry families.
//!
//! Parameters are `[w_0 .. w_{d-1}, bias]`. The loss and gradient take one fused pass per
//! block of four rows (four dot products sharing the weight loads, the residuals, then one
//! axpy of the four rows into the gradient), written so the compiler vectorises it for the
//! baseline target and compiled a second time with AVX2 enabled, picked at run time. Rust
//! never reassociates or contracts float operations, so both versions give bit-identical
//! results. Which loss a model has is its [`ScalarLoss`], fixed by its family.

use super::differentiable::Model;
use super::loss::ScalarLoss;
use super::registry::{ModelFamily, ModelKind, ParamLayout};
use super::spec::{Head, HeadKind, ModelSpec};

/// A generalised linear model: z = w·x + b, with a squared-error or cross-entropy loss.
#[derive(Debug, Clone, Copy)]
pub struct LinearModel {
    loss: ScalarLoss,
    num_features: usize,
}

impl LinearModel {
    /// A model with this loss on `num_features` features.
    pub fn with_loss(loss: ScalarLoss, num_features: usize) -> Self {
        LinearModel { loss, num_features }
    }

    /// A model of `kind`, linear or logistic, on `num_features` features.
    ///
    /// Panics for any other kind (a caller bug: only these two are linear models).
    pub fn new(kind: ModelKind, num_features: usize) -> Self {
        let loss = if kind == ModelKind::Linear {
            ScalarLoss::SquaredError
        } else if kind == ModelKind::Logistic {
            ScalarLoss::CrossEntropy
        } else {
            panic!("LinearModel is linear or logistic, not {kind}")
        };
        Self::with_loss(loss, num_features)
    }

    /// The model's kind: linear for squared error, logistic for cross-entropy.
    pub fn kind(&self) -> ModelKind {
        match self.loss {
            ScalarLoss::SquaredError => ModelKind::Linear,
            ScalarLoss::CrossEntropy => ModelKind::Logistic,
        }
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
            self.loss,
            self.num_features,
            params,
            features,
            targets,
            None,
            Some(grad),
        )
    }

    fn loss_grad_sum_weighted(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        weights: &[f32],
        grad: &mut [f32],
    ) -> f64 {
        assert_eq!(weights.len(), targets.len(), "weights and targets disagree");
        kernel::run(
            self.loss,
            self.num_features,
            params,
            features,
            targets,
            Some(weights),
            Some(grad),
        )
    }

    fn loss_sum(&self, params: &[f32], features: &[f32], targets: &[f32]) -> f64 {
        kernel::run(
            self.loss,
            self.num_features,
            params,
            features,
            targets,
            None,
            None,
        )
    }

    fn init_params(&self, _seed: u64) -> Vec<f32> {
        // A convex loss: zero is as good a start as any, and needs no seed.
        vec![0.0; self.num_features + 1]
    }

    fn head(&self) -> Head {
        match self.loss {
            ScalarLoss::SquaredError => Head::Regression,
            ScalarLoss::CrossEntropy => Head::Binary,
        }
    }

    fn predict(&self, params: &[f32], features: &[f32], out: &mut [f32]) {
        let d = self.num_features;
        for (row, o) in features.chunks_exact(d.max(1)).zip(out.iter_mut()) {
            let z = kernel::dot(&params[..d], row) + params[d];
            *o = self.loss.output(z);
        }
    }

    fn decays(&self) -> Vec<bool> {
        let mut decays = vec![true; self.num_features + 1];
        decays[self.num_features] = false;
        decays
    }
}

/// The `linear` and `logistic` families: one [`LinearModel`] each, with a fixed head.
pub(super) struct LinearFamily {
    name: &'static str,
    summary: &'static str,
    loss: ScalarLoss,
    head: HeadKind,
}

/// `linear`: linear regression.
pub(super) const LINEAR: LinearFamily = LinearFamily {
    name: "linear",
    summary: "Linear regression, mean squared error",
    loss: ScalarLoss::SquaredError,
    head: HeadKind::Regression,
};

/// `logistic`: logistic regression.
pub(super) const LOGISTIC: LinearFamily = LinearFamily {
    name: "logistic",
    summary: "Logistic regression, binary cross-entropy (labels 0/1)",
    loss: ScalarLoss::CrossEntropy,
    head: HeadKind::Binary,
};

impl ModelFamily for LinearFamily {
    fn name(&self) -> &'static str {
        self.name
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn head_kind(&self, _requested: HeadKind) -> HeadKind {
        self.head
    }

    fn describe(&self, _spec: &ModelSpec) -> String {
        self.name.to_string()
    }

    fn build(&self, _spec: &ModelSpec, num_features: usize) -> Box<dyn Model> {
        Box::new(LinearModel::with_loss(self.loss, num_features))
    }

    fn param_layout(&self) -> ParamLayout {
        ParamLayout::WeightsAndBias
    }
}

mod kernel {
    use super::ScalarLoss;

    const LANES: usize = 8;

    /// Dispatches to the AVX2 build of the kernel where the CPU has it. With `weights`, row
    /// i's loss and residual are multiplied by `weights[i]` (a separate instantiation: the
    /// unweighted kernel is the same code as without weights).
    pub fn run(
        loss: ScalarLoss,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        weights: Option<&[f32]>,
        grad: Option<&mut [f32]>,
    ) -> f64 {
        assert_eq!(params.len(), d + 1, "parameter vector length");
        assert_eq!(x.len(), y.len() * d, "features and targets disagree");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe {
                    match weights {
                        None => run_avx2(loss, d, params, x, y, Unweighted, grad),
                        Some(w) => run_avx2(loss, d, params, x, y, Weighted(w), grad),
                    }
                };
            }
        }
        match weights {
            None => run_generic(loss, d, params, x, y, Unweighted, grad),
            Some(w) => run_generic(loss, d, params, x, y, Weighted(w), grad),
        }
    }

    /// How a row's loss and residual are scaled: monomorphised, so the unweighted kernel
    /// carries no weight at all.
    trait RowWeights: Copy {
        fn scale(self, i: usize, loss: f32, residual: f32) -> (f32, f32);
    }

    #[derive(Clone, Copy)]
    struct Unweighted;

    impl RowWeights for Unweighted {
        #[inline(always)]
        fn scale(self, _i: usize, loss: f32, residual: f32) -> (f32, f32) {
            (loss, residual)
        }
    }

    #[derive(Clone, Copy)]
    struct Weighted<'w>(&'w [f32]);

    impl RowWeights for Weighted<'_> {
        #[inline(always)]
        fn scale(self, i: usize, loss: f32, residual: f32) -> (f32, f32) {
            let w = self.0[i];
            (loss * w, residual * w)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        loss: ScalarLoss,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        weights: impl RowWeights,
        grad: Option<&mut [f32]>,
    ) -> f64 {
        run_generic(loss, d, params, x, y, weights, grad)
    }

    #[inline(always)]
    fn run_generic(
        loss: ScalarLoss,
        d: usize,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        weights: impl RowWeights,
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
                let (row_loss, residual) = loss.loss_and_residual(z[k] + bias, y[i + k]);
                let (row_loss, residual) = weights.scale(i + k, row_loss, residual);
                loss_sum += f64::from(row_loss);
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
            let (row_loss, residual) = loss.loss_and_residual(dot(w, row) + bias, y[i]);
            let (row_loss, residual) = weights.scale(i, row_loss, residual);
            loss_sum += f64::from(row_loss);
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
    fn reference(loss: ScalarLoss, params: &[f32], x: &[f32], y: &[f32]) -> (f64, Vec<f64>) {
        let d = params.len() - 1;
        let mut grad = vec![0.0f64; d + 1];
        let mut total = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            let row = &x[i * d..(i + 1) * d];
            let z: f64 = row
                .iter()
                .zip(params)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
                + f64::from(params[d]);
            let yi = f64::from(yi);
            let (l, r) = match loss {
                ScalarLoss::SquaredError => ((z - yi).powi(2), 2.0 * (z - yi)),
                ScalarLoss::CrossEntropy => {
                    let p = 1.0 / (1.0 + (-z).exp());
                    ((1.0 + z.exp()).ln() - yi * z, p - yi)
                }
            };
            total += l;
            for j in 0..d {
                grad[j] += r * f64::from(row[j]);
            }
            grad[d] += r;
        }
        (total, grad)
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
                assert_eq!(model.kind(), kind);
                let mut grad = vec![0.0f32; d + 1];
                let loss = model.loss_grad_sum(&params, &x, &y, &mut grad);
                let (ref_loss, ref_grad) = reference(model.loss, &params, &x, &y);
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
    #[should_panic(expected = "LinearModel is linear or logistic, not mlp")]
    fn a_linear_model_of_another_kind_is_a_caller_bug() {
        LinearModel::new(ModelKind::Mlp, 3);
    }
}
