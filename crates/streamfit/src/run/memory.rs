//! Fit, or refuse: the run's memory budget against the memory the process may use.
//!
//! The memory available is the cgroup's limit where there is one (v2 `memory.max`, v1
//! `memory.limit_in_bytes`), else the machine's physical memory (`MemTotal`); the environment
//! variable [`AVAILABLE_ENV`] overrides both (tests use it; no cgroup is needed to try the
//! refusal). With `memory_limit` the readers' blocks, then the shuffle buffer, then the
//! prefetch depth are shrunk until the budget fits the limit; without it, a budget larger than what is available stops the run
//! before anything is read, naming the figures and the options that shrink them. Nothing here
//! reads the data.

use std::path::Path;
use std::sync::Arc;

use crate::config::TrainConfig;
use crate::data::source::Source;
use crate::error::{Error, Result};
use crate::pipeline::PipelineConfig;
use crate::train::Eval;

/// Overrides the memory available to the process, in MB (for tests and for a user who knows
/// better than the cgroup files).
pub const AVAILABLE_ENV: &str = "STREAMFIT_AVAILABLE_MEMORY_MB";

/// The smallest shuffle buffer a fitted run keeps, in rows (smaller mixes too little to be
/// worth training on; the user can still ask for less with `shuffle_buffer`).
pub const MIN_FITTED_SHUFFLE_ROWS: usize = 1_024;

/// The memory this process may use, in bytes, and where the figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// `cgroup memory.max`, `physical memory`, or the environment variable.
    pub from: String,
}

/// What `memory_limit` chose (reported before training).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    pub limit_bytes: u64,
    pub budget_bytes: u64,
    /// The settings as given, and as fitted.
    pub before: Settings,
    pub after: Settings,
}

/// The memory available to this process; `None` when nothing says (not Linux, no /proc).
pub fn available() -> Option<Available> {
    if let Ok(text) = std::env::var(AVAILABLE_ENV) {
        return text.trim().parse::<u64>().ok().map(|mb| Available {
            bytes: mb * MB,
            from: AVAILABLE_ENV.to_string(),
        });
    }
    cgroup_limit().or_else(physical)
}

/// The limit of this process's cgroup (v2, then v1), when one is set.
fn cgroup_limit() -> Option<Available> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in membership.lines() {
        // v2: `0::/path`; v1: `N:memory:/path` (or with other controllers listed).
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let (file, v2) = if controllers.is_empty() {
            (
                Path::new("/sys/fs/cgroup").join(path).join("memory.max"),
                true,
            )
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir = Path::new("/sys/fs/cgroup/memory").join(path);
            (dir.join("memory.limit_in_bytes"), false)
        } else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let text = text.trim();
        // "max" (v2) or a huge number (v1: no limit) means none.
        if let Ok(bytes) = text.parse::<u64>()
            && bytes < (1 << 60)
        {
            return Some(Available {
                bytes,
                from: if v2 {
                    "cgroup memory.max".to_string()
                } else {
                    "cgroup memory.limit_in_bytes".to_string()
                },
            });
        }
    }
    None
}

/// The machine's physical memory (`MemTotal`).
fn physical() -> Option<Available> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Available {
        bytes: kb * 1024,
        from: "physical memory".to_string(),
    })
}

/// Resolves `mode` for a run whose `budget_bytes` leave the rest of `available` to the page
/// cache, and tells `sources` (see [`ReadMode`](crate::data::ReadMode)): true when they now
/// read explicitly.
pub fn apply_read_mode(
    mode: crate::data::ReadMode,
    sources: &[&Arc<dyn Source>],
    budget_bytes: u64,
    available: Option<&Available>,
) -> bool {
    let data_bytes = sources.iter().map(|s| s.file_bytes()).sum();
    let room = available.map(|a| a.bytes.saturating_sub(budget_bytes));
    let explicit = mode.reads_explicitly(data_bytes, room);
    for source in sources {
        source.read_explicitly(explicit);
    }
    explicit
}

/// What the process holds besides its data, in the memory budget: code and libraries paged
/// in, thread stacks, the allocator's own memory. A run on 2,000 rows peaks at about 13 MB;
/// 3 epochs over 8M × 64 shards read explicitly peaked up to 20 MB above the data's budget
/// (docs/benchmarks.md).
pub const PROCESS_BYTES: u64 = 24_000_000;

/// The memory budget of a configuration, and how it reads its data (kept here, beside the
/// fitting that uses them, rather than in `config.rs`).
impl TrainConfig {
    /// Resident-memory budget of training on `source` with these settings and no validation
    /// data: [`TrainConfig::memory_budget_with_valid`] without it.
    pub fn memory_budget_bytes(&self, source: &Arc<dyn Source>) -> u64 {
        self.memory_budget_with_valid(source, None)
    }

    /// Resident-memory budget of training on `source`, validating on `valid` when given: the
    /// training pipeline (with what its readers hold to decode a unit:
    /// [`Source::unit_io_bytes`] each) plus the validation pass (resident together: with «eval_every» the
    /// validation pass runs while the training pipeline holds its buffers), or the full-data
    /// pass over the training data when that is larger (it runs after the training pipeline
    /// of the epoch is gone; only with [`Eval::EveryEpoch`](crate::train::Eval)), plus the
    /// model and its optimizer and gradient buffers ([`crate::train::model_memory_bytes`]),
    /// plus the bytes remote data may have fetched ahead ([`Source::fetch_budget_bytes`]),
    /// plus [`PROCESS_BYTES`] for the process itself.
    pub fn memory_budget_with_valid(
        &self,
        source: &Arc<dyn Source>,
        valid: Option<&Arc<dyn Source>>,
    ) -> u64 {
        let (rows, d) = (source.num_rows(), source.num_features());
        let train = self.pipeline_config(rows);
        let model = self.trainer.model.build(d);
        let model_bytes = crate::train::model_memory_bytes(
            model.as_ref(),
            train.piece_rows,
            self.trainer.num_threads,
        );
        // A pass's buffers plus what each of its readers holds to decode a unit.
        let pass = |config: &PipelineConfig, source: &Arc<dyn Source>| {
            config.memory_budget_bytes(source.row_width(), source.num_rows())
                + config.num_readers as u64 * source.unit_io_bytes()
        };
        let valid_bytes = valid.map_or(0, |v| pass(&crate::train::eval_config(&train, v), v));
        let full_pass = match self.trainer.eval {
            Eval::EveryEpoch => pass(&crate::train::eval_config(&train, source), source),
            Eval::Off => 0,
        };
        PROCESS_BYTES
            + (pass(&train, source) + valid_bytes).max(full_pass)
            + model_bytes
            + source.fetch_budget_bytes()
    }

    /// Tells `source` how to read its local files: `read_mode` resolved against this
    /// configuration's memory budget ([`apply_read_mode`]; a prepared
    /// training run resolves it again once its settings are fitted). True when it reads them
    /// explicitly.
    pub fn apply_read_mode(&self, source: &Arc<dyn Source>) -> bool {
        apply_read_mode(
            self.read_mode,
            &[source],
            self.memory_budget_bytes(source),
            available().as_ref(),
        )
    }
}

/// A megabyte as the command line prints budgets: 10^6 bytes.
pub const MB: u64 = 1_000_000;

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MB as f64)
}

/// The smallest reader block a fitted run uses, in rows.
pub const MIN_FITTED_BLOCK_ROWS: usize = 1_024;

/// Applies `config.memory_limit_mb` and refuses a budget larger than the memory available.
/// `budget` computes the budget of a configuration on this data.
///
/// Fitting shrinks, in this order, what costs the least: the readers' blocks (down to
/// [`MIN_FITTED_BLOCK_ROWS`]; no batch changes), then the shuffle buffer (down to
/// [`MIN_FITTED_SHUFFLE_ROWS`]; the batches change, and the result joins the settings a resume
/// checks), then the prefetch depth (to 1). A limit already met changes nothing.
pub fn fit(
    config: &mut TrainConfig,
    source: &Arc<dyn Source>,
    available: Option<Available>,
    budget: &dyn Fn(&TrainConfig) -> u64,
) -> Result<Option<Fitted>> {
    let Some(limit_mb) = config.memory_limit_mb else {
        let (Some(available), now) = (available, budget(config)) else {
            return Ok(None);
        };
        if now > available.bytes {
            return Err(Error::OverBudget {
                budget: mb(now),
                available: mb(available.bytes),
                from: available.from,
            });
        }
        return Ok(None);
    };
    let limit = limit_mb * MB;
    if let Some(available) = &available
        && limit > available.bytes
    {
        return Err(Error::config(
            "memory_limit",
            format!(
                "{} is more than the {} available to this process ({})",
                mb(limit),
                mb(available.bytes),
                available.from
            ),
        ));
    }
    let before = Settings::of(config);
    let done = |config: &TrainConfig| fitted(limit, budget(config), before, config);
    // The readers' blocks: halved until the budget fits or they reach the floor.
    while budget(config) > limit && config.block_rows > MIN_FITTED_BLOCK_ROWS {
        config.block_rows = (config.block_rows / 2).max(MIN_FITTED_BLOCK_ROWS);
    }
    if budget(config) <= limit {
        return Ok(Some(done(config)));
    }
    // Then the shuffle buffer (budget is linear in its rows), then the prefetch depth.
    let row_bytes = crate::data::RowBlock::bytes_per_row(source.row_width()) as u64;
    let floor = MIN_FITTED_SHUFFLE_ROWS.min(before.shuffle_buffer_rows);
    for prefetch in [before.prefetch, before.prefetch.min(1)] {
        config.prefetch = prefetch;
        config.shuffle_buffer_rows = floor;
        let at_floor = budget(config);
        if at_floor <= limit {
            // Whole multiples of the floor: a gradient thread or a reader more (a few KB of
            // the budget) seldom moves the buffer, and so the batches. It is printed, and a
            // resume checks it like any shuffle-buffer size.
            let room = (limit - at_floor) / row_bytes;
            let rows = floor + (room as usize / floor) * floor;
            config.shuffle_buffer_rows = rows.min(before.shuffle_buffer_rows);
            return Ok(Some(done(config)));
        }
    }
    Err(Error::config(
        "memory_limit",
        format!(
            "{} cannot hold this run: even with reader blocks of {} rows, a shuffle buffer of \
             {floor} rows and a prefetch of {} the budget is {} (lower «batch_size» or \
             «readers», or raise the limit)",
            mb(limit),
            config.block_rows,
            config.prefetch,
            mb(budget(config))
        ),
    ))
}

/// The settings fitting may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub block_rows: usize,
    pub shuffle_buffer_rows: usize,
    pub prefetch: usize,
}

impl Settings {
    fn of(config: &TrainConfig) -> Settings {
        Settings {
            block_rows: config.block_rows,
            shuffle_buffer_rows: config.shuffle_buffer_rows,
            prefetch: config.prefetch,
        }
    }
}

fn fitted(limit: u64, budget: u64, before: Settings, config: &TrainConfig) -> Fitted {
    Fitted {
        limit_bytes: limit,
        budget_bytes: budget,
        before,
        after: Settings::of(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_memory_or_a_cgroup_limit_is_found_here() {
        // This is Linux: one of them is there, and it is a sensible size.
        let found = cgroup_limit().or_else(physical).expect("a figure");
        assert!(found.bytes > 64 * MB, "{found:?}");
    }
}
