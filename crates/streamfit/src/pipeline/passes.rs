//! The [`Pipeline`]: starts passes over one source (an epoch, a resumed epoch, or a plain scan).
//!
//! It computes what an epoch holds (its plan of units, this rank's share of it, its steps and
//! rows) and starts the reader threads and the `shuffle` thread for a pass, handing back the
//! [`BatchStream`] that yields its batches. The threads' work itself lives in [`reader`](super::reader)
//! and `stage.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::bounded;

use super::batch::BatchStream;
use super::stage::{ShuffleStage, StreamStart};
use super::{
    ErrorSlot, LastBatch, Next, PipelineConfig, RngStream, Shuffle, ShuffleBuffer, StreamCursor,
    epoch_plan, resume, rng_for, spawn_readers,
};
use crate::data::RowBlock;
use crate::data::source::Source;
use crate::error::{Error, Result};

/// Starts passes over one source.
pub struct Pipeline {
    source: Arc<dyn Source>,
    config: PipelineConfig,
}

impl Pipeline {
    /// A pipeline over `source`; `config` must have passed [`PipelineConfig::check`].
    pub fn new(source: Arc<dyn Source>, config: PipelineConfig) -> Self {
        Pipeline { source, config }
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

    /// Steps in epoch `epoch`: [`Pipeline::steps_per_epoch`], or in a data-parallel run the
    /// steps of the largest share that epoch (the ranks step together until every share is
    /// used up).
    pub fn steps_in_epoch(&self, epoch: u64) -> u64 {
        let cfg = &self.config;
        if cfg.world <= 1 {
            return self.steps_per_epoch();
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
        let (start, plan, reread) = resume::restart(self, cursor)?;
        Ok((self.start(plan, start)?, reread))
    }

    /// The units this pipeline reads in epoch `epoch`, in order: the epoch's plan (file order,
    /// or permuted from the seed), or in a data-parallel run this rank's share of it (the plan
    /// positions ≡ rank mod world).
    pub fn plan(&self, epoch: u64) -> Vec<usize> {
        let cfg = &self.config;
        let plan = epoch_plan(self.source.units().len(), cfg.shuffle, epoch);
        if cfg.world <= 1 {
            return plan;
        }
        plan.into_iter()
            .enumerate()
            .filter(|(position, _)| position % cfg.world == cfg.rank)
            .map(|(_, unit)| unit)
            .collect()
    }

    /// Rows this pipeline emits in epoch `epoch`: [`Pipeline::rows_per_epoch`], or in a
    /// data-parallel run the rows of this rank's units.
    pub fn epoch_rows(&self, epoch: u64) -> u64 {
        if self.config.world <= 1 {
            return self.rows_per_epoch();
        }
        let units = self.source.units();
        self.plan(epoch).iter().map(|&u| units[u].num_rows).sum()
    }

    /// Starts epoch `epoch`: readers, the shuffle thread, and the prefetch queue.
    pub fn epoch(&self, epoch: u64) -> Result<BatchStream> {
        let cfg = &self.config;
        let plan = self.plan(epoch);
        let buffer = match cfg.shuffle {
            Shuffle::Off => None,
            Shuffle::Seeded(seed) => Some(ShuffleBuffer::new(
                self.buffer_capacity(),
                self.source.num_features(),
                rng_for(seed, epoch, RngStream::ShuffleBuffer),
            )),
        };
        self.start(
            plan,
            StreamStart {
                skip_rows: 0,
                buffer,
                step: 0,
                rows_emitted: 0,
                epoch_rows: self.epoch_rows(epoch),
            },
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

    /// Starts the readers on `plan` and the shuffle thread in state `from`.
    fn start(&self, plan: Vec<usize>, from: StreamStart) -> Result<BatchStream> {
        let cfg = &self.config;
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(ErrorSlot::default());
        let (mut threads, blocks) = spawn_readers(
            self.source.clone(),
            Arc::new(plan),
            cfg.reader_settings(),
            stop.clone(),
            errors,
        )?;
        let (batch_tx, batch_rx) = bounded(cfg.queue_groups());
        let (cancel_tx, cancel_rx) = bounded::<()>(0);
        let stage = ShuffleStage::new(
            blocks,
            from,
            cfg,
            self.source.num_features(),
            batch_tx,
            cancel_rx,
        );
        let shuffle_thread = std::thread::Builder::new()
            .name("shuffle".to_string())
            .spawn(move || stage.run());
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
            self.config.reader_settings(),
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
