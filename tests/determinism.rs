//! Invariant 3 (determinism): bit-identical parameters for any reader and thread count.

mod common;

use streamfit::generate::Task;
use streamfit::train::BatchSize;

fn params_bits(
    dir: &std::path::Path,
    batch: BatchSize,
    readers: usize,
    threads: usize,
) -> Vec<u32> {
    let mut config = common::config(dir, batch);
    config.num_readers = readers;
    config.trainer.num_threads = threads;
    config.trainer.epochs = 2;
    common::bits(&common::fit(&config).params)
}

#[test]
fn parameters_are_bit_identical_for_any_reader_and_thread_count() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 30_000, 9, 3, 2_000, 11);
    // b = 256 takes the serial path; b = 5,000 and full batches split across rayon workers.
    for batch in [
        BatchSize::Rows(256),
        BatchSize::Rows(5_000),
        BatchSize::Full,
    ] {
        let reference = params_bits(dir.path(), batch, 1, 1);
        assert_eq!(
            reference,
            params_bits(dir.path(), batch, 3, 1),
            "{batch:?}: readers 1 vs 3"
        );
        assert_eq!(
            reference,
            params_bits(dir.path(), batch, 1, 2),
            "{batch:?}: threads 1 vs 2"
        );
        assert_eq!(
            reference,
            params_bits(dir.path(), batch, 3, 2),
            "{batch:?}: both changed"
        );
    }
}
