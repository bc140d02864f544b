//! Optimizers: turn an averaged gradient into a parameter update.
//!
//! Layer 1: works on flat f32 vectors, knows nothing of models, data or threads.

/// One parameter update from an averaged gradient.
pub trait Optimizer: Send {
    /// Updates `params` in place from `grad` (the batch-averaged gradient).
    fn step(&mut self, params: &mut [f32], grad: &[f32]);
    /// The learning rate.
    fn learning_rate(&self) -> f32;
}

/// Plain stochastic gradient descent: `p ← p − lr · g`.
#[derive(Debug, Clone)]
pub struct Sgd {
    learning_rate: f32,
}

impl Sgd {
    /// SGD with learning rate `learning_rate`.
    pub fn new(learning_rate: f32) -> Self {
        Sgd { learning_rate }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        for (p, g) in params.iter_mut().zip(grad) {
            *p -= self.learning_rate * g;
        }
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_steps_against_the_gradient() {
        let mut p = vec![1.0, -1.0];
        Sgd::new(0.5).step(&mut p, &[2.0, -4.0]);
        assert_eq!(p, vec![0.0, 1.0]);
    }
}
