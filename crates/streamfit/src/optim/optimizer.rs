//! The [`Optimizer`]: one step = the scheduled learning rate, gradient clipping, L2 weight
//! decay, then the kind's update rule; and its [`OptimizerState`], the plain data a checkpoint
//! saves.
//!
//! Nothing here depends on which rule runs, beyond the number of moment vectors it keeps and
//! whether it decouples weight decay (both answered by [`OptimizerKind`]).

use serde::{Deserialize, Serialize};

use super::config::OptimizerConfig;
use super::rule::OptimizerKind;

/// What the optimizer carries between steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Steps taken.
    pub step: u64,
    /// Momentum velocity, or Adam's first moment (empty for SGD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first: Vec<f32>,
    /// Adam's second moment (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub second: Vec<f32>,
}

/// Lengths of the first and second moment vectors of `kind` for `num_params` parameters.
fn moment_lengths(kind: OptimizerKind, num_params: usize) -> (usize, usize) {
    let moments = kind.num_moments();
    (
        if moments >= 1 { num_params } else { 0 },
        if moments >= 2 { num_params } else { 0 },
    )
}

/// Applies updates; see the module docs.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    total_steps: u64,
    /// True for the entries weight decay applies to (weights, not biases).
    decays: Vec<bool>,
    state: OptimizerState,
}

impl Optimizer {
    /// An optimizer for `decays.len()` parameters over a run of `total_steps` steps (for the
    /// cosine schedule), starting from `state` (a fresh one when `None`).
    ///
    /// Panics if the state's vectors do not fit the parameter count: callers check restored
    /// state with [`Optimizer::state_fits`] first.
    pub fn new(
        config: OptimizerConfig,
        decays: Vec<bool>,
        total_steps: u64,
        state: Option<OptimizerState>,
    ) -> Self {
        let n = decays.len();
        let state = state.unwrap_or_else(|| {
            let (first, second) = moment_lengths(config.kind, n);
            OptimizerState {
                step: 0,
                first: vec![0.0; first],
                second: vec![0.0; second],
            }
        });
        assert!(
            Self::state_fits(&config, n, &state),
            "optimizer state shape"
        );
        Optimizer {
            config,
            total_steps,
            decays,
            state,
        }
    }

    /// True when `state` has the vectors `config` needs for `num_params` parameters.
    pub fn state_fits(config: &OptimizerConfig, num_params: usize, state: &OptimizerState) -> bool {
        let (first, second) = moment_lengths(config.kind, num_params);
        state.first.len() == first && state.second.len() == second
    }

    /// The state to save.
    pub fn state(&self) -> &OptimizerState {
        &self.state
    }

    /// The learning rate the next step will use.
    pub fn learning_rate(&self) -> f32 {
        self.config
            .learning_rate_at(self.state.step, self.total_steps)
    }

    /// Updates `params` in place from the batch-averaged gradient `grad` (which clipping and
    /// L2 decay rewrite in place). Returns the learning rate used.
    pub fn step(&mut self, params: &mut [f32], grad: &mut [f32]) -> f32 {
        debug_assert_eq!(params.len(), self.decays.len());
        let cfg = &self.config;
        let lr = cfg.learning_rate_at(self.state.step, self.total_steps);
        self.state.step += 1;
        if let Some(max_norm) = cfg.clip_grad_norm {
            let norm = grad
                .iter()
                .map(|g| f64::from(*g) * f64::from(*g))
                .sum::<f64>()
                .sqrt();
            if norm > f64::from(max_norm) {
                let scale = (f64::from(max_norm) / norm) as f32;
                grad.iter_mut().for_each(|g| *g *= scale);
            }
        }
        let wd = cfg.weight_decay;
        if wd > 0.0 && !cfg.kind.decouples_weight_decay() {
            for ((g, p), decays) in grad.iter_mut().zip(params.iter()).zip(&self.decays) {
                if *decays {
                    *g += wd * p;
                }
            }
        }
        cfg.kind
            .apply(cfg, lr, params, grad, &self.decays, &mut self.state);
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adam(n: usize, state: Option<OptimizerState>) -> Optimizer {
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.5,
            ..OptimizerConfig::default()
        };
        Optimizer::new(config, vec![true; n], 100, state)
    }

    #[test]
    fn clipping_bounds_the_gradient_norm() {
        let config = OptimizerConfig {
            learning_rate: 1.0,
            clip_grad_norm: Some(1.0),
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(config, vec![true; 2], 10, None);
        let mut p = vec![0.0, 0.0];
        opt.step(&mut p, &mut [3.0, 4.0]);
        assert!(
            (p[0] + 0.6).abs() < 1e-6 && (p[1] + 0.8).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn a_fresh_state_has_the_moments_of_its_rule() {
        for (kind, first, second) in [
            (OptimizerKind::Sgd, 0, 0),
            (OptimizerKind::Momentum, 3, 0),
            (OptimizerKind::Nesterov, 3, 0),
            (OptimizerKind::Adam, 3, 3),
            (OptimizerKind::AdamW, 3, 3),
        ] {
            let config = OptimizerConfig {
                kind,
                ..OptimizerConfig::default()
            };
            let opt = Optimizer::new(config.clone(), vec![true; 3], 10, None);
            assert_eq!(
                (opt.state().first.len(), opt.state().second.len()),
                (first, second),
                "{kind:?}"
            );
            assert!(Optimizer::state_fits(&config, 3, opt.state()));
            assert_eq!(Optimizer::state_fits(&config, 4, opt.state()), first == 0);
        }
    }

    #[test]
    fn saved_state_continues_the_same_trajectory() {
        let grads = [[0.3f32, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.2]];
        let mut whole = adam(2, None);
        let mut p = vec![1.0, 1.0];
        for g in grads {
            whole.step(&mut p, &mut g.clone());
        }
        let mut first = adam(2, None);
        let mut q = vec![1.0, 1.0];
        for g in &grads[..2] {
            first.step(&mut q, &mut g.clone());
        }
        let state = serde_json::to_string(first.state()).unwrap();
        let mut second = adam(2, serde_json::from_str(&state).ok());
        for g in &grads[2..] {
            second.step(&mut q, &mut g.clone());
        }
        assert_eq!(p, q);
    }
}
