//! What the ranks of a data-parallel run must agree on, and the sums that make them agree.
//!
//! The trainer's loop is the same for one process and for many: these helpers add a count or
//! a flag over every rank, and check that the ranks start from the same state and hold the
//! same parameters. In a world of one every sum is the value itself and every check passes
//! without computing anything. The gradient's all-reduce is not here: it is part of the step
//! ([`GradientEngine::finish_step_across`](super::GradientEngine::finish_step_across)).

use super::TrainerConfig;
use super::checkpoint::RunFingerprint;
use super::checkpoint::restore::Start;
use crate::comm::Collective;
use crate::error::{Error, Result};
use crate::pipeline::BatchSource;

/// True once SIGINT/SIGTERM asked this process to stop.
pub(super) fn interrupt_requested(config: &TrainerConfig) -> bool {
    config
        .interrupt
        .as_ref()
        .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
}

/// True on every rank when any rank has been asked to stop.
pub(super) fn any_rank_signalled(world: &dyn Collective, config: &TrainerConfig) -> bool {
    let mut signalled = [f64::from(u8::from(interrupt_requested(config)))];
    world.sum_in_place(&mut signalled);
    signalled[0] > 0.0
}

/// `count` summed over every rank.
pub(super) fn sum_across(world: &dyn Collective, count: u64) -> u64 {
    let mut total = [count as f64];
    world.sum_in_place(&mut total);
    total[0] as u64
}

/// Fails unless every rank holds bit-identical parameters (a CRC32C of their bytes). A world
/// of one has nothing to compare.
pub(super) fn check_same_params(
    world: &dyn Collective,
    params: &[f32],
    iteration: u64,
) -> Result<()> {
    if world.size() <= 1 {
        return Ok(());
    }
    let bytes: Vec<u8> = params.iter().flat_map(|p| p.to_le_bytes()).collect();
    if world.all_equal(u64::from(crc32c::crc32c(&bytes))) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "the ranks' parameters differ after iteration {iteration}"
        )))
    }
}

/// Fails unless every rank starts from the same state (the same run and data, the same
/// checkpoint or none), without which their collectives would not line up. A world of one
/// has nothing to compare.
pub(super) fn check_same_start(
    world: &dyn Collective,
    fingerprint: Option<&RunFingerprint>,
    stream: &dyn BatchSource,
    start: &Start,
) -> Result<()> {
    if world.size() <= 1 {
        return Ok(());
    }
    let mut state = Vec::new();
    state.extend(fingerprint.map_or(0, RunFingerprint::hash).to_le_bytes());
    state.extend(start.iteration.to_le_bytes());
    state.extend(start.next_epoch.to_le_bytes());
    for unit in stream.source().map_or(&[][..], |s| s.units()) {
        state.extend(unit.num_rows.to_le_bytes());
    }
    for p in &start.params {
        state.extend(p.to_le_bytes());
    }
    if world.all_equal(u64::from(crc32c::crc32c(&state))) {
        Ok(())
    } else {
        Err(Error::config(
            "data/resume",
            "the ranks do not start from the same state: every rank must read the same data and resume from the same checkpoint (one «checkpoint_dir» every rank can read)",
        ))
    }
}
