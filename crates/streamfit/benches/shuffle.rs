//! The shuffle stage's own cost per row, alone on one core: 8,192-row blocks of 64 float32
//! features pushed through a `ShuffleBuffer` (the reservoir, 65,536 rows by default) whose
//! evicted rows are written into 256-row batches in runs, as the `shuffle` thread does,
//! without readers or a trainer competing for the caches. Compare with the shuffle thread's time in a training
//! run (docs/benchmarks.md) to see what the two other stages cost it. Run with
//! `cargo bench --bench shuffle`.

use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use streamfit::data::RowBlock;
use streamfit::pipeline::ShuffleBuffer;
use streamfit::pipeline::shuffle::BatchSink;

const FEATURES: usize = 64;
const BLOCK_ROWS: usize = 8_192;
const BATCH_ROWS: usize = 256;
/// Distinct blocks (16 MB, so the incoming rows come from the caches rather than memory, as
/// blocks a reader has just written do) and blocks pushed per measured iteration (1M rows).
const DISTINCT: usize = 8;
const BLOCKS: usize = 128;

fn block(first: u64) -> RowBlock {
    let mut b = RowBlock::with_capacity(FEATURES, BLOCK_ROWS);
    let row: Vec<f32> = (0..FEATURES).map(|j| j as f32).collect();
    for i in 0..BLOCK_ROWS as u64 {
        b.push_row(&row, 1.0, first + i);
    }
    b
}

/// Fills 256-row batches as the shuffle thread's batcher does (runs written in place), and
/// starts the next batch once one is full.
struct Batches {
    batch: RowBlock,
    emitted: u64,
}

impl BatchSink for Batches {
    fn open(&mut self) -> Option<(&mut RowBlock, usize)> {
        let room = BATCH_ROWS - self.batch.num_rows();
        Some((&mut self.batch, room))
    }

    fn appended(&mut self, _: usize) -> ControlFlow<()> {
        if self.batch.num_rows() == BATCH_ROWS {
            self.emitted += black_box(self.batch.row_ids()[0]) & 1;
            self.batch.reset(FEATURES);
        }
        ControlFlow::Continue(())
    }

    fn emit_one(&mut self, features: &[f32], target: f32, row_id: u64) -> ControlFlow<()> {
        self.batch.push_row(features, target, row_id);
        self.appended(1)
    }
}

fn bench(c: &mut Criterion) {
    let blocks: Vec<RowBlock> = (0..DISTINCT)
        .map(|k| block((k * BLOCK_ROWS) as u64))
        .collect();
    let mut group = c.benchmark_group("shuffle");
    group.throughput(Throughput::Elements((BLOCKS * BLOCK_ROWS) as u64));
    group.sample_size(10);
    for capacity in [8_192usize, 65_536, 262_144] {
        group.bench_function(
            format!("reservoir {capacity} rows, batches of {BATCH_ROWS}"),
            |b| {
                b.iter(|| {
                    let mut buffer = ShuffleBuffer::new(
                        capacity,
                        FEATURES,
                        Xoshiro256PlusPlus::seed_from_u64(1),
                    );
                    let mut sink = Batches {
                        batch: RowBlock::with_capacity(FEATURES, BATCH_ROWS),
                        emitted: 0,
                    };
                    for block in blocks.iter().cycle().take(BLOCKS) {
                        let _ = buffer.push_rows_into(block, 0..block.num_rows(), &mut sink);
                    }
                    let mut emit = |x: &[f32], y: f32, id: u64| sink.emit_one(x, y, id);
                    let _ = buffer.drain(&mut emit);
                    sink.emitted
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
