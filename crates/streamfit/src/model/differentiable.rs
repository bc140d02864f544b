//! The [`Model`] trait: what the trainer, evaluation and `predict` ask of a model.
//!
//! A model is a loss over rows of f32 features on one flat f32 parameter vector. It sums (never
//! averages) the loss and the gradient over the rows it is given; averaging, chunking and
//! threads are the trainer's business, files are the caller's.

use super::spec::Head;

/// A differentiable model over rows of `num_features` f32 features.
///
/// Contract: `features` is row-major with `targets.len()` rows; `grad` has
/// [`Model::num_params`] entries, and the summed (not averaged) gradient is added to it.
/// Targets have passed [`Head::accepts`]. Shapes that break the contract are caller bugs and
/// may panic. Results depend on the rows only (never on the calling thread), so the trainer's
/// fixed chunk split gives bit-identical parameters for any thread count.
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
    /// Like [`Model::loss_grad_sum`], with row `i`'s loss (and so its gradient) multiplied by
    /// `weights[i]` (`weights.len()` rows, each weight finite and ≥ 0). With every weight 1
    /// the result must equal `loss_grad_sum`'s bit for bit. By default each row is summed on
    /// its own and scaled (correct for any model, and slow: the built-in models fuse it).
    fn loss_grad_sum_weighted(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        weights: &[f32],
        grad: &mut [f32],
    ) -> f64 {
        let d = features.len() / targets.len().max(1);
        let mut row_grad = vec![0.0f32; grad.len()];
        let mut loss = 0.0;
        for (i, &w) in weights.iter().enumerate() {
            row_grad.fill(0.0);
            let row = &features[i * d..(i + 1) * d];
            let row_loss = self.loss_grad_sum(params, row, &targets[i..=i], &mut row_grad);
            loss += row_loss * f64::from(w);
            for (g, r) in grad.iter_mut().zip(&row_grad) {
                *g += r * w;
            }
        }
        loss
    }
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
    /// f32 values of per-thread scratch the model needs per row of a chunk (activations).
    fn scratch_per_row(&self) -> usize {
        0
    }
}
