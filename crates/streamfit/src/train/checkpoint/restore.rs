//! Where a run starts: from scratch, or from its checkpoint once that is known to fit.
//!
//! [`restore`] checks a [`Checkpoint`] against the run (its fingerprint, the data's identity,
//! the model's parameter count, and that its place in the run is one the run's plan can reach)
//! and returns the [`Start`] the trainer continues from: parameters, optimizer state, epochs
//! done, and where the interrupted epoch's stream stood. It neither reads files nor starts a
//! stream. A checkpoint's checksum only proves that the file is what was written; a file edited
//! and re-checksummed is caught here, by its cursor.

use rand_xoshiro::Xoshiro256PlusPlus;

use super::{Checkpoint, DataFile, RunFingerprint, RunningLoss};
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerState};
use crate::pipeline::{BatchSource, StreamCursor, StreamPosition};
use crate::train::{BestModel, EpochSummary, ResumeInfo, TrainerConfig, ValidationRecord};

/// The state a run starts from.
pub(crate) struct Start {
    /// Parameters (in the standardised space when standardising).
    pub params: Vec<f32>,
    /// The optimizer's state (none: a fresh optimizer).
    pub optimizer: Option<OptimizerState>,
    /// The best epoch so far under «early_stop».
    pub best: Option<BestModel>,
    /// Summaries of the finished epochs.
    pub epochs: Vec<EpochSummary>,
    /// Iterations done.
    pub iteration: u64,
    /// The epoch (from 0) to run or continue next.
    pub next_epoch: u64,
    /// Inside that epoch: where its stream stood, and the steps done by then (over all
    /// ranks). `None` at an epoch boundary.
    pub position: Option<(StreamPosition, u64)>,
    /// What the resume reports (the rows re-read are filled in when the epoch restarts);
    /// `None` for a fresh run.
    pub resumed: Option<ResumeInfo>,
    /// Inside an epoch: its training-loss sums so far (zero when the checkpoint did not
    /// carry them).
    pub running: RunningLoss,
    /// With «eval_every»: the last evaluation of the validation data so far.
    pub last_validation: Option<ValidationRecord>,
}

impl Start {
    /// A fresh run from parameters `params`.
    pub fn fresh(params: Vec<f32>) -> Self {
        Start {
            params,
            optimizer: None,
            best: None,
            epochs: Vec::new(),
            iteration: 0,
            next_epoch: 0,
            position: None,
            resumed: None,
            running: RunningLoss::default(),
            last_validation: None,
        }
    }
}

/// The state of `checkpoint`, refused unless it belongs to the run `now` of `config` on the
/// data `data` with `num_params` parameters, and its cursor is one `stream`'s plan can reach.
pub(crate) fn restore(
    checkpoint: &Checkpoint,
    now: &RunFingerprint,
    data: &[DataFile],
    num_params: usize,
    config: &TrainerConfig,
    stream: &dyn BatchSource,
) -> Result<Start> {
    checkpoint.check_compatible(now, data)?;
    if checkpoint.params.len() != num_params
        || !Optimizer::state_fits(&config.optimizer, num_params, &checkpoint.optimizer_state)
    {
        return Err(Error::config(
            "resume",
            "the checkpoint's parameter count does not match the model",
        ));
    }
    // The files the run dropped shape the plans and step counts the cursor is checked with.
    stream.restore_dropped(&checkpoint.files_dropped)?;
    let steps_done = check_cursor(checkpoint, stream, config.epochs as u64)?;
    let iteration = checkpoint.iteration;
    Ok(Start {
        params: checkpoint.params.clone(),
        optimizer: Some(checkpoint.optimizer_state.clone()),
        best: checkpoint.best.clone(),
        epochs: checkpoint.epochs_done.clone(),
        iteration,
        next_epoch: checkpoint.next_epoch,
        position: checkpoint.position().map(|p| (p, steps_done)),
        resumed: Some(ResumeInfo {
            from_iteration: iteration,
            epoch: checkpoint.next_epoch + 1,
            rows_reread: 0,
        }),
        running: match checkpoint.position() {
            Some(_) => checkpoint.epoch_loss.unwrap_or_default(),
            None => RunningLoss::default(),
        },
        last_validation: checkpoint.last_validation,
    })
}

/// Checks the checkpoint's place in a run of `epochs` epochs on `stream`: the epoch it
/// continues with is one of them, every finished epoch is summarised and made at most the
/// steps its plan holds, the iteration is those epochs' steps plus the steps into the current
/// one (at most that epoch's), the cursor is in that epoch at that step, and its shuffle
/// generator can run. Returns the steps into the current epoch.
fn check_cursor(checkpoint: &Checkpoint, stream: &dyn BatchSource, epochs: u64) -> Result<u64> {
    let bad = |reason: String| {
        Error::config(
            "resume",
            format!("the checkpoint's position is impossible: {reason}"),
        )
    };
    let next = checkpoint.next_epoch;
    let iteration = checkpoint.iteration;
    if next > epochs {
        return Err(bad(format!(
            "it continues with epoch {} of a run of {epochs} («epochs»)",
            next.saturating_add(1)
        )));
    }
    if checkpoint.epochs_done.len() as u64 != next {
        return Err(bad(format!(
            "it continues with epoch {} but summarises {} finished epoch(s)",
            next + 1,
            checkpoint.epochs_done.len()
        )));
    }
    // The steps epoch `e`'s plan holds; with «drop_last», a file dropped after part of the
    // last step went out keeps that step too.
    let dropped = stream.dropped_files();
    let most_steps =
        |e: u64| stream.steps_in_epoch(e) + u64::from(dropped.iter().any(|d| d.epoch == e));
    let mut before = 0u64;
    for (index, summary) in checkpoint.epochs_done.iter().enumerate() {
        let most = most_steps(index as u64);
        if summary.epoch != index + 1 || summary.iterations > most {
            return Err(bad(format!(
                "finished epoch {} is summarised as epoch {} of {} iterations (the plan holds {most})",
                index + 1,
                summary.epoch,
                summary.iterations
            )));
        }
        before = before.saturating_add(summary.iterations);
    }
    let Some(into) = iteration.checked_sub(before) else {
        return Err(bad(format!(
            "iteration {iteration} comes before the end of its {next} finished epoch(s) ({before} iterations)"
        )));
    };
    let Some(position) = checkpoint.position() else {
        if into != 0 {
            return Err(bad(format!(
                "iteration {iteration} is {into} past the end of epoch {next}, but the checkpoint holds no cursor inside epoch {}",
                next + 1
            )));
        }
        return Ok(0);
    };
    if next == epochs {
        return Err(bad(format!(
            "it holds a cursor inside epoch {} of a run of {epochs} («epochs»)",
            next + 1
        )));
    }
    let steps = most_steps(next);
    if into > steps {
        return Err(bad(format!(
            "iteration {iteration} is {into} steps into epoch {}, which has {steps}",
            next + 1
        )));
    }
    let cursors: Vec<&StreamCursor> = match &position {
        StreamPosition::Process(cursor) => vec![cursor],
        StreamPosition::Ranks(cursors) => cursors.iter().collect(),
    };
    // One process's cursor is at the step the iteration says; in a data-parallel run a rank
    // whose share ran out stopped earlier, and the largest share is there.
    let furthest = cursors.iter().map(|c| c.steps).max().unwrap_or(0);
    let single = matches!(position, StreamPosition::Process(_));
    for cursor in &cursors {
        if cursor.epoch != next {
            return Err(bad(format!(
                "its cursor is in epoch {}, the checkpoint continues with epoch {}",
                cursor.epoch.saturating_add(1),
                next + 1
            )));
        }
        if (single && cursor.steps != into) || cursor.steps > into {
            return Err(bad(format!(
                "its cursor is {} steps into epoch {}, iteration {iteration} is {into} steps into it",
                cursor.steps,
                next + 1
            )));
        }
        if cursor.rng.as_ref().is_some_and(is_all_zero) {
            return Err(bad(
                "its shuffle buffer's generator state is all zero (such a generator yields only zeros)"
                    .to_string(),
            ));
        }
    }
    if furthest != into {
        return Err(bad(format!(
            "its cursors are at most {furthest} steps into epoch {}, iteration {iteration} is {into} steps into it",
            next + 1
        )));
    }
    Ok(into)
}

/// True for the all-zero state of a xoshiro generator: its one fixed point, which `from_seed`
/// never makes but an edited checkpoint can.
fn is_all_zero(rng: &Xoshiro256PlusPlus) -> bool {
    serde_json::to_value(rng).is_ok_and(|v| {
        v.get("s")
            .and_then(|s| s.as_array())
            .is_some_and(|words| words.iter().all(|w| w.as_u64() == Some(0)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_all_zero_generator_state_is_refused() {
        let zero: Xoshiro256PlusPlus = serde_json::from_str(r#"{"s":[0,0,0,0]}"#).unwrap();
        assert!(is_all_zero(&zero));
        let one: Xoshiro256PlusPlus = serde_json::from_str(r#"{"s":[0,0,1,0]}"#).unwrap();
        assert!(!is_all_zero(&one));
        let seeded = crate::pipeline::rng_for(0, 0, crate::pipeline::RngStream::ShuffleBuffer);
        assert!(!is_all_zero(&seeded));
    }
}
