//! Dense networks: softmax regression (`softmax`) and multilayer perceptrons (`mlp`), on GEMM,
//! with their two registry families.
//!
//! Parameters are the layers in order, each a row-major weight matrix `W [out × in]` followed
//! by its `out` biases. Over a chunk of n rows (row-major `X [n × d]`) the forward pass is
//! `Z_l = A_{l−1} · W_lᵀ + b_l`, `A_l = act(Z_l)` for the hidden layers, and the head turns the
//! last `Z` into a loss and `∂loss/∂Z`. The backward pass is `∂W_l += ∂Z_lᵀ · A_{l−1}`,
//! `∂b_l += Σ_rows ∂Z_l`, `∂A_{l−1} = ∂Z_l · W_l`, `∂Z_{l−1} = ∂A_{l−1} ⊙ act′`. All products go
//! through `gemm` on one thread (parallelism is the trainer's fixed chunk split), so a chunk's
//! result depends on its rows only: bit-identical for any thread count.
//!
//! Activations and deltas live in a per-thread scratch buffer that grows to the largest chunk
//! and is then reused, so steady-state training allocates nothing per chunk.

use std::cell::RefCell;

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::differentiable::Model;
use super::gemm::matmul;
use super::loss::{ScalarLoss, softmax, softmax_cross_entropy};
use super::registry::ModelFamily;
use super::spec::{Activation, Head, HeadKind, ModelSpec};

/// One dense layer's place in the parameter vector.
#[derive(Debug, Clone, Copy)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// Offset of `W`; the biases follow at `offset + outputs · inputs`.
    offset: usize,
    /// Outputs of the layers before this one: its activations over n rows start at
    /// `n · act_offset` in the activation scratch.
    act_offset: usize,
}

impl Layer {
    fn weights<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.offset..self.offset + self.outputs * self.inputs]
    }

    fn biases<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        let start = self.offset + self.outputs * self.inputs;
        &params[start..start + self.outputs]
    }

    fn grads<'a>(&self, grad: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        let w = self.outputs * self.inputs;
        grad[self.offset..self.offset + w + self.outputs].split_at_mut(w)
    }

    /// This layer's activations over `n` rows, in the activation scratch `acts`.
    fn acts<'a>(&self, acts: &'a [f32], n: usize) -> &'a [f32] {
        &acts[n * self.act_offset..n * (self.act_offset + self.outputs)]
    }
}

/// A stack of dense layers with a regression, binary or multiclass head.
#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
    activation: Activation,
    head: Head,
    num_params: usize,
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Network {
    /// A network on `num_features` inputs with these hidden widths (none: softmax or linear
    /// regression on the head).
    pub fn new(num_features: usize, hidden: &[usize], activation: Activation, head: Head) -> Self {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut inputs = num_features;
        let (mut offset, mut act_offset) = (0, 0);
        for &outputs in hidden.iter().chain(std::iter::once(&head.outputs())) {
            layers.push(Layer {
                inputs,
                outputs,
                offset,
                act_offset,
            });
            offset += outputs * (inputs + 1);
            act_offset += outputs;
            inputs = outputs;
        }
        Network {
            layers,
            activation,
            head,
            num_params: offset,
        }
    }

    /// Runs the forward pass over `n` rows, then (with `grad`) the backward pass; returns the
    /// summed loss. With `predictions`, also writes the head's outputs; with `predictions` and
    /// no targets, only those (and returns 0).
    fn run(
        &self,
        params: &[f32],
        x: &[f32],
        y: &[f32],
        weights: Option<&[f32]>,
        grad: Option<&mut [f32]>,
        predictions: Option<&mut [f32]>,
    ) -> f64 {
        let n = if let Some(out) = &predictions {
            out.len() / self.head.outputs()
        } else {
            y.len()
        };
        if n == 0 {
            return 0.0;
        }
        let widths: usize = self.layers.iter().map(|l| l.outputs).sum();
        let need = n * self.scratch_per_row();
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
            // acts holds Z (then A = act(Z) in place) of every layer, back to back.
            let (acts, deltas) = scratch[..need].split_at_mut(n * widths);
            self.forward(params, x, n, acts);
            let acts = &*acts;
            let logits = self.layers[self.layers.len() - 1].acts(acts, n);
            if let Some(out) = predictions {
                self.outputs(logits, out);
                if y.is_empty() {
                    return 0.0;
                }
            }
            let half = deltas.len() / 2;
            let (delta, spare) = deltas.split_at_mut(half);
            let loss = match weights {
                None => self.head_loss(logits, y, &mut delta[..n * self.head.outputs()], |_, l| l),
                Some(w) => {
                    self.head_loss(logits, y, &mut delta[..n * self.head.outputs()], |i, l| {
                        l * w[i]
                    })
                }
            };
            if let Some(w) = weights {
                // ∂(w·loss)/∂logits = w · ∂loss/∂logits.
                let k = self.head.outputs();
                for (row, w) in delta[..n * k].chunks_exact_mut(k).zip(w) {
                    row.iter_mut().for_each(|g| *g *= w);
                }
            }
            if let Some(grad) = grad {
                self.backward(params, x, n, acts, delta, spare, grad);
            }
            loss
        })
    }

    fn forward(&self, params: &[f32], x: &[f32], n: usize, acts: &mut [f32]) {
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (i, o) = (layer.inputs, layer.outputs);
            // The layer below ends where this one starts.
            let (before, after) = acts.split_at_mut(n * layer.act_offset);
            let input: &[f32] = if l == 0 {
                x
            } else {
                &before[n * (layer.act_offset - i)..]
            };
            let z = &mut after[..n * o];
            // Z [n × o] = A [n × i] · Wᵀ [i × o]
            matmul(
                (n, o, i),
                z,
                o,
                (input, i as isize, 1),
                (layer.weights(params), 1, i as isize),
                false,
            );
            let b = layer.biases(params);
            for row in z.chunks_exact_mut(o) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v += bias;
                }
                if l != last {
                    match self.activation {
                        Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
                        Activation::Tanh => row.iter_mut().for_each(|v| *v = v.tanh()),
                    }
                }
            }
        }
    }

    /// Summed loss of the logits (row i's loss passed through `row_loss(i, loss)`: a weight,
    /// or nothing) and ∂loss/∂logits into `delta`.
    #[inline(always)]
    fn head_loss(
        &self,
        logits: &[f32],
        y: &[f32],
        delta: &mut [f32],
        row_loss: impl Fn(usize, f32) -> f32,
    ) -> f64 {
        let mut loss = 0.0f64;
        let scalar = match self.head {
            Head::Regression => ScalarLoss::SquaredError,
            Head::Binary => ScalarLoss::CrossEntropy,
            Head::Multiclass(k) => {
                let rows = logits.chunks_exact(k).zip(y).zip(delta.chunks_exact_mut(k));
                for (i, ((z, t), d)) in rows.enumerate() {
                    loss += f64::from(row_loss(i, softmax_cross_entropy(z, *t as usize, d)));
                }
                return loss;
            }
        };
        for (i, ((z, t), d)) in logits.iter().zip(y).zip(delta.iter_mut()).enumerate() {
            let (l, r) = scalar.loss_and_residual(*z, *t);
            loss += f64::from(row_loss(i, l));
            *d = r;
        }
        loss
    }

    /// The head's outputs from the logits: a value, a probability, or K probabilities.
    fn outputs(&self, logits: &[f32], out: &mut [f32]) {
        match self.head {
            Head::Regression => out.copy_from_slice(logits),
            Head::Binary => {
                for (o, z) in out.iter_mut().zip(logits) {
                    *o = ScalarLoss::CrossEntropy.output(*z);
                }
            }
            Head::Multiclass(k) => {
                for (o, z) in out.chunks_exact_mut(k).zip(logits.chunks_exact(k)) {
                    softmax(z, o);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward<'b>(
        &self,
        params: &[f32],
        x: &[f32],
        n: usize,
        acts: &[f32],
        mut delta: &'b mut [f32],
        mut spare: &'b mut [f32],
        grad: &mut [f32],
    ) {
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (i, o) = (layer.inputs, layer.outputs);
            let input: &[f32] = if l == 0 {
                x
            } else {
                self.layers[l - 1].acts(acts, n)
            };
            let dz = &delta[..n * o];
            let (gw, gb) = layer.grads(grad);
            // ∂W [o × i] += ∂Zᵀ [o × n] · A [n × i]
            matmul(
                (o, i, n),
                gw,
                i,
                (dz, 1, o as isize),
                (input, i as isize, 1),
                true,
            );
            for row in dz.chunks_exact(o) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if l == 0 {
                break;
            }
            // ∂A [n × i] = ∂Z [n × o] · W [o × i], then ⊙ act′ of the layer below.
            let da = &mut spare[..n * i];
            matmul(
                (n, i, o),
                da,
                i,
                (dz, o as isize, 1),
                (layer.weights(params), i as isize, 1),
                false,
            );
            let below = self.layers[l - 1].acts(acts, n);
            match self.activation {
                Activation::Relu => {
                    for (d, a) in da.iter_mut().zip(below) {
                        if *a <= 0.0 {
                            *d = 0.0;
                        }
                    }
                }
                Activation::Tanh => {
                    for (d, a) in da.iter_mut().zip(below) {
                        *d *= 1.0 - a * a;
                    }
                }
            }
            std::mem::swap(&mut delta, &mut spare);
        }
    }
}

impl Model for Network {
    fn num_params(&self) -> usize {
        self.num_params
    }

    fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut params = vec![0.0f32; self.num_params];
        if self.layers.len() == 1 {
            return params; // softmax regression: convex, zero is a fine start
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x6d6c_705f_696e_6974);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (i, o) = (layer.inputs as f64, layer.outputs as f64);
            // He for ReLU layers, Xavier (Glorot) for tanh layers and the output layer.
            let std = if l != last && self.activation == Activation::Relu {
                (2.0 / i).sqrt()
            } else {
                (2.0 / (i + o)).sqrt()
            };
            let normal = Normal::new(0.0, std).expect("a finite positive std");
            let start = layer.offset;
            for w in &mut params[start..start + layer.outputs * layer.inputs] {
                *w = normal.sample(&mut rng) as f32;
            }
        }
        params
    }

    fn loss_grad_sum(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        grad: &mut [f32],
    ) -> f64 {
        self.check_shapes(params, features, targets.len());
        self.run(params, features, targets, None, Some(grad), None)
    }

    fn loss_grad_sum_weighted(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        weights: &[f32],
        grad: &mut [f32],
    ) -> f64 {
        self.check_shapes(params, features, targets.len());
        assert_eq!(weights.len(), targets.len(), "weights and targets disagree");
        self.run(params, features, targets, Some(weights), Some(grad), None)
    }

    fn loss_sum(&self, params: &[f32], features: &[f32], targets: &[f32]) -> f64 {
        self.check_shapes(params, features, targets.len());
        self.run(params, features, targets, None, None, None)
    }

    fn head(&self) -> Head {
        self.head
    }

    fn predict(&self, params: &[f32], features: &[f32], out: &mut [f32]) {
        let n = out.len() / self.head.outputs();
        self.check_shapes(params, features, n);
        self.run(params, features, &[], None, None, Some(out));
    }

    fn loss_and_predict(
        &self,
        params: &[f32],
        features: &[f32],
        targets: &[f32],
        out: &mut [f32],
    ) -> f64 {
        assert_eq!(out.len(), targets.len() * self.head.outputs(), "outputs");
        self.check_shapes(params, features, targets.len());
        // One forward pass for both.
        self.run(params, features, targets, None, None, Some(out))
    }

    fn decays(&self) -> Vec<bool> {
        let mut decays = vec![true; self.num_params];
        for layer in &self.layers {
            let start = layer.offset + layer.outputs * layer.inputs;
            decays[start..start + layer.outputs].fill(false);
        }
        decays
    }

    fn scratch_per_row(&self) -> usize {
        let widths: usize = self.layers.iter().map(|l| l.outputs).sum();
        let widest = self.layers.iter().map(|l| l.outputs.max(l.inputs)).max();
        widths + 2 * widest.unwrap_or(0)
    }
}

impl Network {
    fn check_shapes(&self, params: &[f32], features: &[f32], rows: usize) {
        assert_eq!(params.len(), self.num_params, "parameter vector length");
        assert_eq!(
            features.len(),
            rows * self.layers[0].inputs,
            "features and rows disagree"
        );
    }
}

/// `softmax`: multiclass logistic regression, the network with no hidden layer.
pub(super) struct SoftmaxFamily;

impl ModelFamily for SoftmaxFamily {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn summary(&self) -> &'static str {
        "Multiclass logistic regression, softmax cross-entropy (labels 0..K-1)"
    }

    fn head_kind(&self, _requested: HeadKind) -> HeadKind {
        HeadKind::Multiclass
    }

    fn build(&self, spec: &ModelSpec, num_features: usize) -> Box<dyn Model> {
        Box::new(Network::new(
            num_features,
            &spec.hidden,
            spec.activation,
            spec.head,
        ))
    }
}

/// `mlp`: a multilayer perceptron with any head.
pub(super) struct MlpFamily;

impl ModelFamily for MlpFamily {
    fn name(&self) -> &'static str {
        "mlp"
    }

    fn summary(&self) -> &'static str {
        "Multilayer perceptron («hidden», «activation», «task»)"
    }

    fn head_kind(&self, requested: HeadKind) -> HeadKind {
        requested
    }

    fn has_hidden_layers(&self) -> bool {
        true
    }

    fn problem(&self, spec: &ModelSpec) -> Option<(&'static str, String)> {
        if spec.hidden.is_empty() {
            return Some(("hidden", "an MLP needs at least one hidden layer".into()));
        }
        if spec.hidden.iter().any(|&h| h == 0 || h > 1 << 16) {
            return Some(("hidden", "widths must be between 1 and 65536".into()));
        }
        None
    }

    fn describe(&self, spec: &ModelSpec) -> String {
        format!(
            "mlp {} {:?} ({})",
            spec.hidden
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(","),
            spec.activation,
            spec.head.describe()
        )
        .to_lowercase()
    }

    fn build(&self, spec: &ModelSpec, num_features: usize) -> Box<dyn Model> {
        Box::new(Network::new(
            num_features,
            &spec.hidden,
            spec.activation,
            spec.head,
        ))
    }
}
