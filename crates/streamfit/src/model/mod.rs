//! Models: a loss and its gradient over a chunk of rows, on one flat f32 parameter vector.
//!
//! Layer 1: no knowledge of files or threads. A [`Model`] sums the loss and the gradient over
//! the rows it is given; averaging, chunking and threads are the trainer's business. A
//! [`ModelSpec`] names a kind and a shape; the kind's [`ModelFamily`], found through the
//! registry, checks, describes and builds it.
//!
//! The built-in kinds (`--model` on the command line) are listed in [`BUILT_IN`] below:
//! - `linear` and `logistic`: [`LinearModel`], parameters `[w_0 .. w_{d-1}, bias]`, a fused
//!   kernel vectorised for the baseline target and for AVX2 (`linear.rs`).
//! - `softmax` and `mlp`: [`Network`], dense layers whose forward and backward passes over a
//!   chunk are matrix products through the `gemm` crate (`network.rs`, `gemm.rs`; see
//!   `benches/gemm.rs`). Softmax regression is the network with no hidden layer.
//!
//! Every built-in layout starts with the input layer as a row-major weight matrix `[h × d]`
//! followed by its `h` biases (h = 1 for the linear models). A model never sees raw features
//! when training standardises: the rows are z-scored before it, and its parameters are saved
//! as learned (see [`crate::train::Standardization`]).
//!
//! Adding a model: write `model/NAME.rs` with the [`Model`] and a [`ModelFamily`] (name,
//! summary, head, settings check, description, build), then add its `mod` line and its entry
//! in [`BUILT_IN`] here. A library user instead calls [`register`] with the family.
//!
//! Files: `spec.rs` (ModelSpec, Head, Activation), `registry.rs` (ModelFamily, ModelKind,
//! register), `differentiable.rs` (the Model trait), `loss.rs` (per-row losses),
//! `metrics.rs` (EvalSums, Metrics), then one file per model.

mod differentiable;
mod gemm;
mod linear;
mod loss;
mod metrics;
pub mod network;
mod registry;
mod spec;

pub use self::differentiable::Model;
pub use self::linear::LinearModel;
pub use self::loss::ScalarLoss;
pub use self::metrics::{EvalSums, Metrics, argmax, eval_sums};
pub use self::network::Network;
pub use self::registry::{ModelFamily, ModelKind, ParamLayout, register};
pub use self::spec::{Activation, Head, HeadKind, MAX_CLASSES, MAX_PARAMS, ModelSpec};

/// The built-in model families, in the order a front end lists them. Their names are also
/// [`ModelKind`]'s constants.
pub static BUILT_IN: &[&dyn ModelFamily] = &[
    &linear::LINEAR,
    &linear::LOGISTIC,
    &network::SoftmaxFamily,
    &network::MlpFamily,
];
