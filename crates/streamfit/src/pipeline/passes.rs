//! The [`Pipeline`]: starts passes over one source (an epoch, a resumed epoch, or a plain scan).
//!
//! It computes what an epoch holds (its plan of units, this rank's share of it, its steps and
//! rows) and starts the reader threads and the `shuffle` thread for a pass, handing back the
//! [`BatchStream`] that yields its batches. The threads' work itself lives in [`reader`](super::reader)
//! and `stage.rs`. It also keeps the record of the files its passes dropped mid-epoch (under
//! `OnBadFile::Skip`, see [`dropped`](super::dropped)), which the plans of later epochs leave
//! out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::bounded;

use super::batch::BatchStream;
use super::dropped::{DroppedFiles, FileDrop, PassDrops, position_rows};
use super::lane_resume;
use super::lane_stage::LaneStage;
use super::stage::{ShuffleStage, StreamStart};
use super::{
    ErrorSlot, LastBatch, Next, PipelineConfig, ReaderSettings, RngStream, Shuffle, ShuffleBuffer,
    StreamCursor, epoch_plan, resume, rng_for, spawn_readers,
};
use crate::data::RowBlock;
use crate::data::source::{OnBadFile, Source};
use crate::error::{Error, Result};

/// Starts passes over one source.
pub struct Pipeline {
    source: Arc<dyn Source>,
    config: PipelineConfig,
    /// Files dropped mid-epoch by this pipeline's passes (under [`OnBadFile::Skip`]).
    dropped: Arc<DroppedFiles>,
    /// Files left out of every epoch: an evaluation pipeline's, the files its training
    /// pipeline dropped.
    left_out: Vec<usize>,
}

impl Pipeline {
    /// A pipeline over `source`; `config` must have passed [`PipelineConfig::check`].
    pub fn new(source: Arc<dyn Source>, config: PipelineConfig) -> Self {
        Pipeline {
            source,
            config,
            dropped: Arc::default(),
            left_out: Vec::new(),
        }
    }

    /// The pipeline of an evaluation pass over this one's data: file order, every row in
    /// steps as large as the pipeline allows, the files dropped so far left out.
    pub fn for_evaluation(&self) -> Pipeline {
        Pipeline {
            left_out: self.dropped.all().iter().map(|d| d.file).collect(),
            ..Pipeline::new(
                self.source.clone(),
                self.config.for_evaluation(self.source.num_rows()),
            )
        }
    }

    /// The files dropped mid-epoch so far, in the order found.
    pub fn dropped_files(&self) -> Vec<FileDrop> {
        self.dropped.all()
    }

    /// Takes over the files a run dropped before (from its checkpoint), checked against this
    /// pipeline's plans: each must be the file of the unit at its plan position, and the
    /// rows it skipped are computed again.
    pub fn restore_dropped(&self, drops: &[FileDrop]) -> Result<()> {
        let bad = |reason: String| {
            Error::config(
                "resume",
                format!("the checkpoint's dropped files do not fit this dataset: {reason}"),
            )
        };
        if drops.is_empty() {
            self.dropped.replace(Vec::new());
            return Ok(());
        }
        if self.config.world > 1 || self.config.on_bad_file != OnBadFile::Skip {
            return Err(Error::config(
                "resume",
                format!(
                    "the checkpoint's run dropped {} mid-epoch under «on_bad_file» skip: resume it with that setting, in one process",
                    drops[0].path.display()
                ),
            ));
        }
        let mut sorted = drops.to_vec();
        sorted.sort_by_key(|d| (d.epoch, d.position));
        self.dropped.replace(Vec::new());
        let units = self.source.units();
        for d in sorted {
            let plan = self.plan(d.epoch);
            let unit = plan
                .get(d.position)
                .map(|&u| units[u])
                .filter(|u| u.file == d.file && d.rows_delivered <= u.num_rows)
                .ok_or_else(|| {
                    bad(format!(
                        "file {} at position {} of epoch {}",
                        d.file,
                        d.position,
                        d.epoch.saturating_add(1)
                    ))
                })?;
            let later: u64 = plan[d.position + 1..]
                .iter()
                .map(|&u| units[u])
                .filter(|u| u.file == d.file)
                .map(|u| u.num_rows)
                .sum();
            self.dropped.record(FileDrop {
                path: self.source.files()[d.file].clone(),
                row_group: unit.index_in_file,
                rows_skipped: unit.num_rows - d.rows_delivered + later,
                ..d
            });
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Number of steps in an epoch: ceil(N/b), or floor(N/b) when the last batch is dropped.
    /// In a data-parallel run, the steps of a rank holding an even share, ceil(N/world) rows
    /// (the real count is the largest share's, which depends on the epoch's plan).
    pub fn steps_per_epoch(&self) -> u64 {
        let n = self
            .source
            .num_rows()
            .div_ceil(self.config.world.max(1) as u64);
        let b = self.config.step_rows;
        match self.config.last_batch {
            LastBatch::Keep => n.div_ceil(b),
            LastBatch::Drop => n / b,
        }
    }

    /// Steps in epoch `epoch`: [`Pipeline::steps_per_epoch`] (less what dropped files took
    /// out), or in a data-parallel run the steps of the largest share that epoch (the ranks
    /// step together until every share is used up).
    pub fn steps_in_epoch(&self, epoch: u64) -> u64 {
        let cfg = &self.config;
        if cfg.world <= 1 {
            let rows = self.available_rows(epoch);
            return match cfg.last_batch {
                LastBatch::Keep => rows.div_ceil(cfg.step_rows),
                LastBatch::Drop => rows / cfg.step_rows,
            };
        }
        let units = self.source.units();
        let mut rows = vec![0u64; cfg.world];
        for (position, &unit) in epoch_plan(units.len(), cfg.shuffle, epoch)
            .iter()
            .enumerate()
        {
            rows[position % cfg.world] += units[unit].num_rows;
        }
        rows.iter()
            .map(|r| r.div_ceil(cfg.step_rows))
            .max()
            .unwrap_or(0)
    }

    /// Steps in the first `epochs` epochs (saturating): a product for one process, whose
    /// epochs all make [`Pipeline::steps_per_epoch`] steps; the sum over the epochs' plans in
    /// a data-parallel run.
    pub fn total_steps(&self, epochs: u64) -> u64 {
        if self.config.world <= 1 {
            return self.steps_per_epoch().saturating_mul(epochs);
        }
        (0..epochs).fold(0u64, |sum, e| sum.saturating_add(self.steps_in_epoch(e)))
    }

    /// Restarts an epoch exactly where `cursor` stands (see [`resume`]): rebuilds the shuffle
    /// buffer by re-reading only the units that hold its rows, then streams the rest of the
    /// plan. Returns the stream and the number of rows re-read.
    pub fn resume(&self, cursor: &StreamCursor) -> Result<(BatchStream, u64)> {
        let (start, plan, position, reread) = resume::restart(self, cursor)?;
        Ok((self.start(plan, start, cursor.epoch, position)?, reread))
    }

    /// The units this pipeline reads in epoch `epoch`, in order: the epoch's plan (file order,
    /// or permuted from the seed), or in a data-parallel run this rank's share of it (the plan
    /// positions ≡ rank mod world).
    /// Units of files dropped in earlier epochs are left out.
    pub fn plan(&self, epoch: u64) -> Vec<usize> {
        let cfg = &self.config;
        let mut plan = epoch_plan(self.source.units().len(), cfg.shuffle, epoch);
        let units = self.source.units();
        let left_out =
            |file: usize| self.left_out.contains(&file) || self.dropped.left_out(file, epoch);
        if !self.left_out.is_empty() || !self.dropped.all().is_empty() {
            plan.retain(|&u| !left_out(units[u].file));
        }
        if cfg.world <= 1 {
            return plan;
        }
        plan.into_iter()
            .enumerate()
            .filter(|(position, _)| position % cfg.world == cfg.rank)
            .map(|(_, unit)| unit)
            .collect()
    }

    /// Rows this pipeline emits in epoch `epoch`: [`Pipeline::rows_per_epoch`] (less what
    /// dropped files took out), or in a data-parallel run the rows of this rank's units.
    pub fn epoch_rows(&self, epoch: u64) -> u64 {
        if self.config.world <= 1 {
            let rows = self.available_rows(epoch);
            return match self.config.last_batch {
                LastBatch::Keep => rows,
                LastBatch::Drop => rows / self.config.step_rows * self.config.step_rows,
            };
        }
        self.available_rows(epoch)
    }

    /// Rows each position of epoch `epoch`'s plan delivers: its unit's, less what the files
    /// dropped in that epoch took out.
    pub fn position_rows(&self, epoch: u64) -> Vec<u64> {
        position_rows(
            self.source.units(),
            &self.plan(epoch),
            &self.dropped.in_epoch(epoch),
        )
    }

    /// Rows epoch `epoch`'s plan delivers (before a last partial step is dropped).
    pub fn available_rows(&self, epoch: u64) -> u64 {
        if self.config.world <= 1 && self.left_out.is_empty() && self.dropped.all().is_empty() {
            return self.source.num_rows();
        }
        self.position_rows(epoch).iter().sum()
    }

    /// Rows an evaluation pass covers: every row of the files not left out or dropped.
    pub fn evaluation_rows(&self) -> u64 {
        let gone: Vec<usize> = self
            .left_out
            .iter()
            .copied()
            .chain(self.dropped.all().iter().map(|d| d.file))
            .collect();
        if gone.is_empty() {
            return self.source.num_rows();
        }
        self.source
            .units()
            .iter()
            .filter(|u| !gone.contains(&u.file))
            .map(|u| u.num_rows)
            .sum()
    }

    /// Starts epoch `epoch`: readers, the shuffle thread, and the prefetch queue.
    pub fn epoch(&self, epoch: u64) -> Result<BatchStream> {
        let cfg = &self.config;
        let plan = self.plan(epoch);
        let lanes = match cfg.shuffle {
            Shuffle::Seeded(seed) if cfg.lanes() > 1 => {
                Some(lane_resume::fresh_start(self, epoch, seed))
            }
            _ => None,
        };
        let buffer = match cfg.shuffle {
            Shuffle::Off => None,
            Shuffle::Seeded(_) if lanes.is_some() => None,
            Shuffle::Seeded(seed) => Some(ShuffleBuffer::new(
                self.buffer_capacity(),
                self.source.row_width(),
                rng_for(seed, epoch, RngStream::ShuffleBuffer),
            )),
        };
        self.start(
            plan,
            StreamStart {
                skip_rows: 0,
                buffer,
                lanes,
                step: 0,
                rows_emitted: 0,
                epoch_rows: self.epoch_rows(epoch),
                plan_rows: self.available_rows(epoch),
            },
            epoch,
            0,
        )
    }

    /// Rows the shuffle buffer holds: the configured size, at most the dataset (a buffer that
    /// never fills only drains, so the clamp changes no result).
    pub fn buffer_capacity(&self) -> usize {
        self.config
            .shuffle_buffer_rows
            .min(usize::try_from(self.source.num_rows()).unwrap_or(usize::MAX))
    }

    /// Rows an epoch emits: all of them, or whole steps only with [`LastBatch::Drop`].
    pub fn rows_per_epoch(&self) -> u64 {
        let n = self.source.num_rows();
        match self.config.last_batch {
            LastBatch::Keep => n,
            LastBatch::Drop => n / self.config.step_rows * self.config.step_rows,
        }
    }

    /// Starts the readers on `plan` (epoch `epoch`'s from position `offset` on) and the
    /// shuffle thread in state `from`.
    fn start(
        &self,
        plan: Vec<usize>,
        from: StreamStart,
        epoch: u64,
        offset: usize,
    ) -> Result<BatchStream> {
        let cfg = &self.config;
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(ErrorSlot::default());
        let settings = cfg.reader_settings();
        let drops = (settings.on_bad_file == OnBadFile::Skip).then(|| {
            PassDrops::new(
                self.source.clone(),
                self.dropped.clone(),
                epoch,
                offset,
                plan.clone(),
            )
        });
        let (mut threads, mut blocks) = spawn_readers(
            self.source.clone(),
            Arc::new(plan),
            settings,
            stop.clone(),
            errors,
        )?;
        if let Some(drops) = drops {
            blocks = blocks.skipping(drops);
        }
        let (batch_tx, batch_rx) = bounded(cfg.queue_groups());
        let (cancel_tx, cancel_rx) = bounded::<()>(0);
        let num_features = self.source.row_width();
        let shuffle = std::thread::Builder::new().name("shuffle".to_string());
        let shuffle_thread = match from.lanes.is_some() {
            true => {
                let stage = LaneStage::new(blocks, from, cfg, num_features, batch_tx, cancel_rx);
                shuffle.spawn(move || stage.run())
            }
            false => {
                let stage = ShuffleStage::new(blocks, from, cfg, num_features, batch_tx, cancel_rx);
                shuffle.spawn(move || stage.run())
            }
        };
        match shuffle_thread {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(Error::internal(format!("cannot start shuffle thread: {e}")));
            }
        }
        Ok(BatchStream::new(
            batch_rx,
            cancel_tx,
            stop,
            threads,
            cfg.batches_per_group(),
        ))
    }

    /// Reads every unit with the readers only (no shuffle, no batching) and calls `consume`
    /// on each block in file order: the read ceiling that training is compared to, and the
    /// way `convert` and `inspect --stats` stream a dataset. An error from `consume` stops the
    /// readers and is returned.
    pub fn scan(&self, mut consume: impl FnMut(&RowBlock) -> Result<()>) -> Result<()> {
        let plan = Arc::new(epoch_plan(self.source.units().len(), Shuffle::Off, 0));
        let stop = Arc::new(AtomicBool::new(false));
        let (threads, mut blocks) = spawn_readers(
            self.source.clone(),
            plan,
            // A scan stops at the first unit that fails.
            ReaderSettings {
                on_bad_file: OnBadFile::Error,
                ..self.config.reader_settings()
            },
            stop.clone(),
            Arc::new(ErrorSlot::default()),
        )?;
        let (_cancel_tx, cancel_rx) = bounded::<()>(0);
        let result = loop {
            match blocks.next_block(&cancel_rx) {
                Ok(Next::Block(block)) => {
                    if let Err(e) = consume(&block) {
                        break Err(e);
                    }
                    blocks.recycle(block);
                }
                Ok(Next::Finished | Next::Cancelled) => break Ok(()),
                // Not sent to a receiver that does not skip.
                Ok(Next::FileDropped { .. }) => continue,
                Err(e) => break Err(e),
            }
        };
        stop.store(true, Ordering::Relaxed);
        drop(blocks);
        for handle in threads {
            let _ = handle.join();
        }
        result
    }
}
