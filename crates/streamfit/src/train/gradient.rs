//! `GradientEngine`: the averaged gradient of a step, on rayon workers, deterministically.
//!
//! A batch is split into fixed chunks of [`CHUNK_ROWS`] rows (the split depends on the row
//! count only, never on the thread count); each chunk's summed gradient is computed in f32 on a
//! worker into its own scratch slot, then the slots are added in chunk order into an f64
//! accumulator. A step that arrives in several batches (a large b, or the whole epoch for
//! batch gradient descent) accumulates across them; [`GradientEngine::finish_step`] divides by
//! the step's row count, or, when rows are weighted ([`GradientEngine::accumulate_weighted`]),
//! by the step's weight sum (a step whose weights sum to 0 changes nothing). Batches of a
//! single chunk skip rayon entirely.

use rayon::prelude::*;

use crate::comm::Collective;
use crate::data::RowBlock;
use crate::error::{Error, Result};
use crate::model::{EvalSums, Head, Model, eval_sums};

/// Rows per gradient chunk. Pipeline pieces are a multiple of it, so a step's partition into
/// chunks does not depend on how the step was split into batches.
pub const CHUNK_ROWS: usize = 1024;

/// Resident bytes of training `model` beyond the data in flight: the parameters, the gradient,
/// its f64 sums, the optimizer's moments, the best-epoch copy, one gradient slot per chunk of a
/// `piece_rows` batch, and each of `threads` threads' activation scratch for a chunk.
pub fn model_memory_bytes(model: &dyn Model, piece_rows: usize, threads: usize) -> u64 {
    let p = model.num_params() as u64;
    let slots = piece_rows.div_ceil(CHUNK_ROWS) as u64;
    let per_param = 4 + 4 + 8 + 8 + 4 + 4 * slots;
    let scratch = (model.scratch_per_row() * CHUNK_ROWS * threads) as u64 * 4;
    p * per_param + scratch
}

struct ChunkScratch {
    grad: Vec<f32>,
    loss: f64,
    sums: EvalSums,
    predictions: Vec<f32>,
}

/// What a finished step summed over every rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTotals {
    /// The loss summed over the step's rows (before the update).
    pub loss_sum: f64,
    /// Rows in the step (0: no rank had rows left).
    pub rows: u64,
    /// What the step averages by: the sum of its rows' weights (`rows` when unweighted).
    pub weight_sum: f64,
    /// Some rank was asked to stop (SIGINT/SIGTERM).
    pub signalled: bool,
}

impl StepTotals {
    /// The step's mean loss: what [`GradientEngine::finish_step`] returns.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / divisor(self.weight_sum)
    }
}

/// Accumulates summed gradients over the batches of a step; see the module docs.
pub struct GradientEngine<'m> {
    model: &'m dyn Model,
    pool: rayon::ThreadPool,
    scratch: Vec<ChunkScratch>,
    grad_sum: Vec<f64>,
    loss_sum: f64,
    rows: u64,
    /// The step's weight sum (its row count when unweighted).
    weight_sum: f64,
}

/// What a sum of weights is divided by: itself, or 1 when it is 0 (the sums are 0 then too).
fn divisor(weight_sum: f64) -> f64 {
    if weight_sum > 0.0 { weight_sum } else { 1.0 }
}

impl<'m> GradientEngine<'m> {
    /// An engine for `model` on a pool of `num_threads` rayon threads.
    pub fn new(model: &'m dyn Model, num_threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(num_threads.max(1))
            .thread_name(|i| format!("gradient-{i}"))
            .build()
            .map_err(|e| Error::internal(format!("cannot start gradient threads: {e}")))?;
        Ok(GradientEngine {
            model,
            pool,
            scratch: Vec::new(),
            grad_sum: vec![0.0; model.num_params()],
            loss_sum: 0.0,
            rows: 0,
            weight_sum: 0.0,
        })
    }

    /// Adds the summed loss and gradient of `rows` to the current step.
    pub fn accumulate(&mut self, params: &[f32], rows: &RowBlock) {
        let n = rows.num_rows();
        if n == 0 {
            return;
        }
        let model = self.model;
        let num_chunks = {
            let _span = tracing::trace_span!("gradient", rows = n).entered();
            self.run_chunks(rows, |_, x, y, slot| {
                slot.grad.fill(0.0);
                slot.loss = model.loss_grad_sum(params, x, y, &mut slot.grad);
            })
        };
        self.add_chunks(num_chunks);
        self.rows += n as u64;
        self.weight_sum += n as f64;
    }

    /// Adds the summed loss and gradient of `rows`, row i's multiplied by `weights[i]` (each
    /// finite and ≥ 0), to the current step; the step then averages by its weight sum.
    /// `weights` has one entry per row (a caller bug otherwise: panics).
    pub fn accumulate_weighted(&mut self, params: &[f32], rows: &RowBlock, weights: &[f32]) {
        let n = rows.num_rows();
        assert_eq!(weights.len(), n, "one weight per row");
        if n == 0 {
            return;
        }
        let model = self.model;
        let num_chunks = {
            let _span = tracing::trace_span!("gradient", rows = n).entered();
            self.run_chunks(rows, |start, x, y, slot| {
                slot.grad.fill(0.0);
                let w = &weights[start..start + y.len()];
                slot.loss = model.loss_grad_sum_weighted(params, x, y, w, &mut slot.grad);
            })
        };
        self.add_chunks(num_chunks);
        self.rows += n as u64;
        self.weight_sum += weights.iter().map(|&w| f64::from(w)).sum::<f64>();
    }

    /// Adds the first `num_chunks` scratch slots' sums, in chunk order.
    fn add_chunks(&mut self, num_chunks: usize) {
        for slot in &self.scratch[..num_chunks] {
            for (acc, g) in self.grad_sum.iter_mut().zip(&slot.grad) {
                *acc += f64::from(*g);
            }
            self.loss_sum += slot.loss;
        }
    }

    /// Ends a step of a data-parallel run: adds every rank's gradient sums, loss, row count and
    /// `signal` flag (one allreduce of one flat buffer), then finishes like
    /// [`GradientEngine::finish_step`] with the global sums. With one process this is
    /// `finish_step`. Returns the step's summed loss and row count over every rank and whether
    /// any rank signalled; no rows and `grad` untouched when no rank had rows.
    pub fn finish_step_across(
        &mut self,
        comm: &dyn Collective,
        grad: &mut [f32],
        signal: bool,
    ) -> StepTotals {
        let mut signalled = signal;
        if comm.size() > 1 {
            let mut flat = std::mem::take(&mut self.grad_sum);
            flat.extend([
                self.loss_sum,
                self.weight_sum,
                self.rows as f64,
                f64::from(u8::from(signal)),
            ]);
            comm.sum_in_place(&mut flat);
            signalled = flat.pop().unwrap_or(0.0) > 0.0;
            self.rows = flat.pop().unwrap_or(0.0) as u64;
            self.weight_sum = flat.pop().unwrap_or(0.0);
            self.loss_sum = flat.pop().unwrap_or(0.0);
            self.grad_sum = flat;
        }
        let (loss_sum, weight_sum) = (self.loss_sum, self.weight_sum);
        if self.rows == 0 {
            return StepTotals {
                loss_sum: 0.0,
                rows: 0,
                weight_sum: 0.0,
                signalled,
            };
        }
        let (_, rows) = self.finish_step(grad);
        StepTotals {
            loss_sum,
            rows,
            weight_sum,
            signalled,
        }
    }

    /// Ends the step: writes the averaged gradient into `grad` and returns the step's mean
    /// loss and row count, then resets for the next step. The average is over the step's
    /// weight sum: its row count when no row was weighted.
    pub fn finish_step(&mut self, grad: &mut [f32]) -> (f64, u64) {
        let by = divisor(self.weight_sum);
        for (g, acc) in grad.iter_mut().zip(self.grad_sum.iter_mut()) {
            *g = (*acc / by) as f32;
            *acc = 0.0;
        }
        let out = (self.loss_sum / by, self.rows);
        self.loss_sum = 0.0;
        self.rows = 0;
        self.weight_sum = 0.0;
        out
    }

    /// The model's output head.
    pub fn head(&self) -> Head {
        self.model.head()
    }

    /// Summed loss, correct predictions and squared errors of `rows`, chunked and summed in
    /// chunk order like [`GradientEngine::accumulate`].
    pub fn eval_sums(&mut self, params: &[f32], rows: &RowBlock) -> EvalSums {
        let model = self.model;
        let _span = tracing::trace_span!("eval", rows = rows.num_rows()).entered();
        let num_chunks = self.run_chunks(rows, |_, x, y, slot| {
            slot.sums = eval_sums(model, params, x, y, &mut slot.predictions);
        });
        let mut total = EvalSums::default();
        for slot in &self.scratch[..num_chunks] {
            total.add(&slot.sums);
        }
        total
    }

    /// Runs `work` on each fixed chunk of `rows` (its first row, features, targets, the chunk's
    /// scratch slot):
    /// on this thread for a single chunk, on the pool otherwise. Returns the number of chunks,
    /// whose results are in `scratch[..num_chunks]` in chunk order.
    fn run_chunks(
        &mut self,
        rows: &RowBlock,
        work: impl Fn(usize, &[f32], &[f32], &mut ChunkScratch) + Sync,
    ) -> usize {
        let n = rows.num_rows();
        let d = rows.num_features();
        let (x, y) = (rows.features(), rows.targets());
        let num_chunks = n.div_ceil(CHUNK_ROWS);
        let num_params = self.model.num_params();
        while self.scratch.len() < num_chunks {
            self.scratch.push(ChunkScratch {
                grad: vec![0.0; num_params],
                loss: 0.0,
                sums: EvalSums::default(),
                predictions: Vec::new(),
            });
        }
        let slots = &mut self.scratch[..num_chunks];
        let chunk = |c: usize, slot: &mut ChunkScratch| {
            let start = c * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(n);
            work(start, &x[start * d..end * d], &y[start..end], slot);
        };
        if num_chunks == 1 {
            chunk(0, &mut slots[0]);
        } else {
            self.pool.install(|| {
                slots
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(c, slot)| chunk(c, slot));
            });
        }
        num_chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LinearModel, ModelKind};

    fn rows(n: usize, d: usize) -> RowBlock {
        let mut b = RowBlock::with_capacity(d, n);
        for i in 0..n {
            let x: Vec<f32> = (0..d)
                .map(|j| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5)
                .collect();
            b.push_row(&x, (i % 2) as f32, i as u64);
        }
        b
    }

    #[test]
    fn gradient_is_bit_identical_for_any_thread_count_and_split() {
        let d = 5;
        let model = LinearModel::new(ModelKind::Logistic, d);
        let params: Vec<f32> = (0..=d).map(|j| j as f32 * 0.1 - 0.2).collect();
        let all = rows(5000, d);
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let mut engine = GradientEngine::new(&model, threads).unwrap();
            engine.accumulate(&params, &all);
            let mut g = vec![0.0; d + 1];
            let (loss, n) = engine.finish_step(&mut g);
            assert_eq!(n, 5000);
            results.push((
                loss.to_bits(),
                g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            ));
        }
        // The same step split into two batches at a chunk boundary.
        let mut first = RowBlock::with_capacity(d, 0);
        first.extend_from(&all, 0..2 * CHUNK_ROWS);
        let mut second = RowBlock::with_capacity(d, 0);
        second.extend_from(&all, 2 * CHUNK_ROWS..5000);
        let mut engine = GradientEngine::new(&model, 2).unwrap();
        engine.accumulate(&params, &first);
        engine.accumulate(&params, &second);
        let mut g = vec![0.0; d + 1];
        let (loss, _) = engine.finish_step(&mut g);
        results.push((loss.to_bits(), g.iter().map(|v| v.to_bits()).collect()));
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    }
}
