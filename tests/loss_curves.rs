//! Batch GD's full-data loss falls at every epoch; small-batch loss per iteration is jagged.

mod common;

use streamfit::error::Result;
use streamfit::generate::Task;
use streamfit::train::{BatchSize, Eval, StepRecord, TrainObserver};

#[derive(Default)]
struct Steps(Vec<f64>);

impl TrainObserver for Steps {
    fn on_step(&mut self, step: &StepRecord) -> Result<()> {
        self.0.push(step.batch_loss);
        Ok(())
    }
}

#[test]
fn full_batch_loss_decreases_at_every_epoch() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 20_000, 6, 2, 2_000, 31);
    let mut config = common::config(dir.path(), BatchSize::Full);
    config.trainer.optimizer.learning_rate = 0.05;
    config.trainer.epochs = 8;
    config.trainer.eval = Eval::EveryEpoch;
    let result = common::fit(&config);
    let losses: Vec<f64> = result.epochs.iter().map(|e| e.full_loss.unwrap()).collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "not decreasing: {losses:?}"
    );
}

#[test]
fn small_batch_loss_per_iteration_is_not_monotone() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 20_000, 6, 2, 2_000, 32);
    let config = common::config(dir.path(), BatchSize::Rows(16));
    let mut steps = Steps::default();
    common::try_fit(&config, &mut steps).unwrap();
    assert_eq!(steps.0.len(), 1_250);
    let rises = steps.0.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        rises > 100,
        "only {rises} rises in {} iterations",
        steps.0.len()
    );
}
