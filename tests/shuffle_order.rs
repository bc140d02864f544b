//! Invariant 3 (determinism) for the batch sequence: epochs differ, seeds reproduce, and
//! --no-shuffle reads in file order.

mod common;

use streamfit::generate::Task;
use streamfit::pipeline::Shuffle;
use streamfit::train::BatchSize;

#[test]
fn epochs_differ_and_the_same_seed_gives_the_same_order() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 4_000, 2, 2, 300, 5);
    let config = common::config(dir.path(), BatchSize::Rows(64));
    let a = common::pipeline(&config);
    let b = common::pipeline(&config);
    let epoch0 = common::steps_of_epoch(&a, 0);
    assert_eq!(
        epoch0,
        common::steps_of_epoch(&b, 0),
        "same seed, same order"
    );
    assert_ne!(
        epoch0,
        common::steps_of_epoch(&a, 1),
        "a new epoch, a new order"
    );
    let mut other = config.clone();
    other.shuffle = Shuffle::Seeded(99);
    assert_ne!(
        epoch0,
        common::steps_of_epoch(&common::pipeline(&other), 0),
        "another seed"
    );
    let flat: Vec<u64> = epoch0.concat();
    assert_ne!(
        flat,
        (0..4_000).collect::<Vec<_>>(),
        "shuffled, not file order"
    );
}

#[test]
fn order_does_not_depend_on_the_number_of_readers() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 3_000, 2, 3, 128, 6);
    let mut config = common::config(dir.path(), BatchSize::Rows(50));
    let orders: Vec<_> = [1, 2, 3, 5]
        .into_iter()
        .map(|readers| {
            config.num_readers = readers;
            common::steps_of_epoch(&common::pipeline(&config), 0)
        })
        .collect();
    assert!(orders.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn no_shuffle_gives_file_order() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Logistic, 2_500, 2, 3, 300, 7);
    let mut config = common::config(dir.path(), BatchSize::Rows(100));
    config.shuffle = Shuffle::Off;
    let pipeline = common::pipeline(&config);
    for epoch in 0..2 {
        let flat: Vec<u64> = common::steps_of_epoch(&pipeline, epoch).concat();
        assert_eq!(flat, (0..2_500).collect::<Vec<_>>());
    }
}
