//! Training reaches the right answer: logistic regression recovers the generating weights, and
//! full-batch linear regression converges to the least-squares solution of a direct solve.

mod common;

use streamfit::generate::Task;
use streamfit::model::ModelSpec;
use streamfit::pipeline::Shuffle;
use streamfit::train::BatchSize;

#[test]
fn logistic_regression_recovers_the_true_weights() {
    let dir = common::tempdir();
    let truth = common::dataset(dir.path(), Task::Logistic, 200_000, 16, 4, 16_384, 21);
    let mut config = common::config(dir.path(), BatchSize::Rows(256));
    config.shuffle_buffer_rows = 65_536;
    config.trainer.model = ModelSpec::logistic();
    config.trainer.epochs = 3;
    config.trainer.optimizer.learning_rate = 0.1;
    let result = common::fit(&config);
    let cosine = common::cosine(&result.params[..16], &truth.weights);
    assert!(cosine >= 0.99, "cosine similarity {cosine}");
    assert!(
        (f64::from(result.params[16]) - f64::from(truth.bias)).abs() < 0.1,
        "bias"
    );
}

/// Solves `a x = b` (a symmetric positive definite) by Cholesky, in f64.
#[allow(clippy::needless_range_loop)] // index form mirrors the textbook algorithm
fn solve_spd(mut a: Vec<Vec<f64>>, b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for j in 0..n {
        for k in 0..j {
            let l = a[j][k];
            for i in j..n {
                a[i][j] -= a[i][k] * l;
            }
        }
        let pivot = a[j][j].sqrt();
        for i in j..n {
            a[i][j] /= pivot;
        }
    }
    let mut y = b;
    for i in 0..n {
        for k in 0..i {
            y[i] -= a[i][k] * y[k];
        }
        y[i] /= a[i][i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= a[k][i] * y[k];
        }
        y[i] /= a[i][i];
    }
    y
}

#[test]
fn full_batch_linear_regression_converges_to_the_least_squares_solution() {
    let dir = common::tempdir();
    common::dataset(dir.path(), Task::Linear, 50_000, 8, 3, 5_000, 22);
    // The direct solve: normal equations over the same rows, read in file order.
    let mut reading = common::config(dir.path(), BatchSize::Full);
    reading.shuffle = Shuffle::Off;
    let p = 9;
    let mut xtx = vec![vec![0.0f64; p]; p];
    let mut xty = vec![0.0f64; p];
    for batch in common::pipeline(&reading).epoch(0).unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.rows.num_rows() {
            let mut x: Vec<f64> = batch.rows.row(i).iter().map(|v| f64::from(*v)).collect();
            x.push(1.0);
            let y = f64::from(batch.rows.targets()[i]);
            for r in 0..p {
                xty[r] += x[r] * y;
                for c in 0..p {
                    xtx[r][c] += x[r] * x[c];
                }
            }
        }
    }
    let exact = solve_spd(xtx, xty);

    let mut config = common::config(dir.path(), BatchSize::Full);
    config.trainer.model = ModelSpec::linear();
    config.trainer.optimizer.learning_rate = 0.3;
    config.trainer.epochs = 40;
    let result = common::fit(&config);
    assert_eq!(result.iterations(), 40, "one update per epoch");
    let err: f64 = result
        .params
        .iter()
        .zip(&exact)
        .map(|(a, b)| (f64::from(*a) - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = exact.iter().map(|b| b * b).sum::<f64>().sqrt();
    assert!(err / norm <= 1e-3, "relative error {}", err / norm);
}
