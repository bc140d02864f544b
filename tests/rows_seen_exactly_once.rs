//! Invariant 2 (exactly once): every row appears exactly once per epoch, for SGD, mini-batch,
//! b = N and full-batch GD, with and without --drop-last.

mod common;

use streamfit::generate::Task;
use streamfit::pipeline::LastBatch;
use streamfit::train::BatchSize;

const N: u64 = 5_003;

#[test]
fn every_row_appears_exactly_once_per_epoch_for_every_batch_size() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, N, 3, 3, 500, 1);
    for batch in [
        BatchSize::Rows(1),
        BatchSize::Rows(7),
        BatchSize::Rows(256),
        BatchSize::Rows(N),
        BatchSize::Full,
    ] {
        let b = match batch {
            BatchSize::Rows(b) => b,
            BatchSize::Full => N,
        };
        let pipeline = common::pipeline(&common::config(dir.path(), batch));
        for epoch in 0..2 {
            let steps = common::steps_of_epoch(&pipeline, epoch);
            assert_eq!(
                steps.len() as u64,
                N.div_ceil(b),
                "{batch:?}: ceil(N/b) steps"
            );
            assert_eq!(pipeline.steps_per_epoch(), N.div_ceil(b));
            for (k, step) in steps.iter().enumerate() {
                let expected = if k + 1 < steps.len() {
                    b
                } else {
                    N - b * (steps.len() as u64 - 1)
                };
                assert_eq!(step.len() as u64, expected, "{batch:?}: rows of step {k}");
            }
            let mut ids: Vec<u64> = steps.concat();
            ids.sort_unstable();
            assert_eq!(
                ids,
                (0..N).collect::<Vec<_>>(),
                "{batch:?} epoch {epoch}: each row once"
            );
        }
    }
}

#[test]
fn drop_last_drops_exactly_the_remainder() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, N, 3, 2, 700, 2);
    for b in [7u64, 256, 1_000] {
        let mut config = common::config(dir.path(), BatchSize::Rows(b));
        config.last_batch = LastBatch::Drop;
        let pipeline = common::pipeline(&config);
        let steps = common::steps_of_epoch(&pipeline, 0);
        assert_eq!(steps.len() as u64, N / b, "b={b}: floor(N/b) steps");
        assert!(
            steps.iter().all(|s| s.len() as u64 == b),
            "b={b}: only full steps"
        );
        let mut ids: Vec<u64> = steps.concat();
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before, "b={b}: no row twice");
        assert_eq!(
            N - ids.len() as u64,
            N % b,
            "b={b}: dropped rows are the remainder"
        );
    }
}

#[test]
fn steps_larger_than_a_batch_buffer_arrive_in_pieces_and_still_cover_every_row() {
    // 40,000 rows with b = 30,000 > the 16,384-row pieces: steps span several batches.
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Linear, 40_000, 2, 2, 4_096, 3);
    let pipeline = common::pipeline(&common::config(dir.path(), BatchSize::Rows(30_000)));
    let steps = common::steps_of_epoch(&pipeline, 0);
    assert_eq!(
        steps.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![30_000, 10_000]
    );
    let mut ids = steps.concat();
    ids.sort_unstable();
    assert_eq!(ids, (0..40_000).collect::<Vec<_>>());
}
