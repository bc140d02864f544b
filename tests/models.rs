//! Models and optimizers: every model's gradient against finite differences of an f64
//! reference, bit-identical gradients for any thread count, softmax against the true model on
//! generated 10-class data, an MLP on a task logistic regression cannot learn, and Adam
//! against SGD on an ill-conditioned problem.

mod common;

use std::path::Path;

use streamfit::config::TrainConfig;
use streamfit::data::RowBlock;
use streamfit::data::source::write::{Compression, ParquetWriter};
use streamfit::generate::Task;
use streamfit::model::{Activation, Head, ModelSpec};
use streamfit::optim::OptimizerKind;
use streamfit::pipeline::Pipeline;
use streamfit::predict::{ApplyConfig, evaluate_model};
use streamfit::train::{
    BatchSize, Eval, GradientEngine, ModelFile, TrainResult, eval_config, train_validated,
};

/// Every kind and head, with both activations.
fn specs() -> Vec<ModelSpec> {
    vec![
        ModelSpec::linear(),
        ModelSpec::logistic(),
        ModelSpec::softmax(4),
        ModelSpec::mlp(vec![5, 3], Activation::Relu, Head::Binary),
        ModelSpec::mlp(vec![4], Activation::Tanh, Head::Regression),
        ModelSpec::mlp(vec![6, 4], Activation::Tanh, Head::Multiclass(3)),
    ]
}

/// A small deterministic pseudo-random stream in [-1, 1).
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// f64 reference of the summed loss: the documented layout (layers of row-major `W [out × in]`
/// followed by `out` biases), the activation on hidden layers, then the head's loss.
fn reference_loss(spec: &ModelSpec, d: usize, params: &[f64], x: &[f32], y: &[f32]) -> f64 {
    let outputs = spec.head.outputs();
    let widths: Vec<usize> = spec
        .hidden
        .iter()
        .copied()
        .chain(std::iter::once(outputs))
        .collect();
    let mut loss = 0.0;
    for (row, &target) in x.chunks_exact(d).zip(y) {
        let mut a: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let mut offset = 0;
        for (l, &out) in widths.iter().enumerate() {
            let inputs = a.len();
            let mut z = vec![0.0; out];
            for (j, zj) in z.iter_mut().enumerate() {
                let w = &params[offset + j * inputs..offset + (j + 1) * inputs];
                *zj = w.iter().zip(&a).map(|(w, a)| w * a).sum::<f64>()
                    + params[offset + out * inputs + j];
            }
            offset += out * (inputs + 1);
            if l + 1 < widths.len() {
                for v in &mut z {
                    *v = match spec.activation {
                        Activation::Relu => v.max(0.0),
                        Activation::Tanh => v.tanh(),
                    };
                }
            }
            a = z;
        }
        let t = f64::from(target);
        loss += match spec.head {
            Head::Regression => (a[0] - t).powi(2),
            Head::Binary => (1.0 + a[0].exp()).ln() - t * a[0],
            Head::Multiclass(_) => {
                let max = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = a.iter().map(|v| (v - max).exp()).sum();
                sum.ln() + max - a[t as usize]
            }
        };
    }
    loss
}

#[test]
fn every_model_matches_finite_differences_of_an_f64_reference() {
    let (d, n) = (6, 7);
    for (s, spec) in specs().into_iter().enumerate() {
        let model = spec.build(d);
        let mut rand = noise(s as u64 + 1);
        // The seeded initialisation, nudged so that no parameter (or ReLU input) sits at zero.
        let params: Vec<f32> = model
            .init_params(42)
            .iter()
            .map(|p| p + 0.3 * rand() as f32)
            .collect();
        let x: Vec<f32> = (0..n * d).map(|_| rand() as f32 * 2.0).collect();
        let y: Vec<f32> = (0..n)
            .map(|i| match spec.head {
                Head::Regression => rand() as f32,
                Head::Binary => (i % 2) as f32,
                Head::Multiclass(k) => (i % k) as f32,
            })
            .collect();
        let mut grad = vec![0.0f32; model.num_params()];
        let loss = model.loss_grad_sum(&params, &x, &y, &mut grad);
        let p64: Vec<f64> = params.iter().map(|&p| f64::from(p)).collect();
        let reference = reference_loss(&spec, d, &p64, &x, &y);
        assert!(
            (loss - reference).abs() <= 1e-4 * (1.0 + reference.abs()),
            "{}: loss {loss} vs f64 reference {reference}",
            spec.describe()
        );
        assert!((model.loss_sum(&params, &x, &y) - loss).abs() <= 1e-9 * (1.0 + loss.abs()));
        // The evaluation's shared forward pass gives the same loss and predictions, bit for bit.
        let mut separate = vec![0.0f32; n * spec.head.outputs()];
        model.predict(&params, &x, &mut separate);
        let mut together = vec![0.0f32; separate.len()];
        let shared = model.loss_and_predict(&params, &x, &y, &mut together);
        assert_eq!(
            shared.to_bits(),
            model.loss_sum(&params, &x, &y).to_bits(),
            "{}",
            spec.describe()
        );
        assert_eq!(together, separate, "{}", spec.describe());
        let h = 1e-6;
        for j in 0..params.len() {
            let mut plus = p64.clone();
            plus[j] += h;
            let mut minus = p64.clone();
            minus[j] -= h;
            let numeric = (reference_loss(&spec, d, &plus, &x, &y)
                - reference_loss(&spec, d, &minus, &x, &y))
                / (2.0 * h);
            let analytic = f64::from(grad[j]);
            assert!(
                (analytic - numeric).abs() <= 1e-3 * (1.0 + numeric.abs()),
                "{}: parameter {j}: analytic {analytic} vs numeric {numeric}",
                spec.describe()
            );
        }
    }
}

#[test]
fn network_gradients_are_bit_identical_for_any_thread_count() {
    let d = 6;
    let mut rand = noise(9);
    let mut rows = RowBlock::with_capacity(d, 5_000);
    for i in 0..5_000u64 {
        let x: Vec<f32> = (0..d).map(|_| rand() as f32).collect();
        rows.push_row(&x, (i % 3) as f32, i);
    }
    let spec = ModelSpec::mlp(vec![16, 8], Activation::Relu, Head::Multiclass(3));
    let model = spec.build(d);
    let params = model.init_params(5);
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let mut engine = GradientEngine::new(model.as_ref(), threads).unwrap();
        engine.accumulate(&params, &rows);
        let mut g = vec![0.0; model.num_params()];
        let (loss, _) = engine.finish_step(&mut g);
        results.push((loss.to_bits(), common::bits(&g)));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

/// Trains `config` with `valid` evaluated after every epoch.
fn train_with_valid(config: &TrainConfig, valid: &Path) -> TrainResult {
    let pipeline = common::pipeline(config);
    let valid_source = TrainConfig {
        data: vec![valid.to_path_buf()],
        ..config.clone()
    }
    .open_source()
    .expect("open valid");
    let valid_pipeline = Pipeline::new(
        valid_source.clone(),
        eval_config(pipeline.config(), &valid_source),
    );
    train_validated(&pipeline, Some(&valid_pipeline), &config.trainer, &mut ()).expect("train")
}

#[test]
fn softmax_reaches_95_percent_of_the_true_models_accuracy_on_10_classes() {
    // One generated dataset (one true model) of 4 files: three to train on, one to validate.
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Multiclass, 80_000, 16, 4, 4_096, 1);
    let truth = streamfit::generate::Truth::load(&data).unwrap();
    assert_eq!(truth.classes, Some(10));
    let files: Vec<_> = truth.files.iter().map(|f| data.join(f)).collect();
    let valid_dir = files[3].clone();

    let mut config = common::config(&files[0], BatchSize::Rows(128));
    config.data = files[..3].to_vec();
    config.trainer.model = ModelSpec::softmax(10);
    config.trainer.optimizer.learning_rate = 0.5;
    config.trainer.epochs = 4;
    config.trainer.eval = Eval::EveryEpoch;
    let result = train_with_valid(&config, &valid_dir);
    let trained = result.epochs.last().unwrap().valid.unwrap();

    // The true model, saved as a softmax model file, scored by `eval` on the same rows.
    let true_params: Vec<f32> = truth
        .class_weights
        .iter()
        .chain(&truth.class_biases)
        .copied()
        .collect();
    let true_file = dir.path().join("true.json");
    ModelFile::new(
        &ModelSpec::softmax(10),
        truth.features.clone(),
        "label".into(),
        &true_params,
    )
    .save(&true_file)
    .unwrap();
    let (truth_metrics, rows) = evaluate_model(&ApplyConfig {
        model: true_file,
        data: vec![valid_dir],
        num_readers: 2,
        verify_checksums: true,
        num_threads: 2,
        read_mode: Default::default(),
        drop_null_labels: false,
    })
    .unwrap();
    assert_eq!(rows, 20_000);
    let (ours, best) = (trained.accuracy.unwrap(), truth_metrics.accuracy.unwrap());
    assert!(best > 0.5, "the true model's accuracy {best}");
    assert!(
        ours >= 0.95 * best,
        "softmax accuracy {ours} < 95% of the true model's {best}"
    );
}

#[test]
fn an_mlp_fits_circles_where_logistic_regression_stays_at_chance() {
    let dir = common::tempdir();
    let (train_dir, valid_dir) = (dir.path().join("train"), dir.path().join("valid"));
    common::dataset(&train_dir, Task::Circles, 40_000, 4, 2, 4_096, 1);
    common::dataset(&valid_dir, Task::Circles, 10_000, 4, 2, 4_096, 2);
    let mut config = common::config(&train_dir, BatchSize::Rows(128));
    config.trainer.epochs = 6;
    config.trainer.optimizer.kind = OptimizerKind::Adam;
    config.trainer.optimizer.learning_rate = 0.01;
    config.trainer.model = ModelSpec::mlp(vec![32, 16], Activation::Relu, Head::Binary);
    let mlp = train_with_valid(&config, &valid_dir);
    config.trainer.model = ModelSpec::logistic();
    let logistic = train_with_valid(&config, &valid_dir);
    let accuracy = |r: &TrainResult| r.epochs.last().unwrap().valid.unwrap().accuracy.unwrap();
    assert!(accuracy(&mlp) >= 0.95, "mlp accuracy {}", accuracy(&mlp));
    assert!(
        (0.4..0.6).contains(&accuracy(&logistic)),
        "logistic accuracy {}",
        accuracy(&logistic)
    );
}

/// Linear-regression data whose two features differ in scale by 100× (condition number of
/// the MSE Hessian 10⁴): y = 0.3·a + 20·b + N(0, 0.1²), a ~ N(0, 10²), b ~ N(0, 0.1²).
fn ill_conditioned(path: &Path) {
    let mut rand = noise(3);
    let gaussian = |rand: &mut dyn FnMut() -> f64| {
        // Irwin–Hall: the sum of 12 uniforms on [0, 1), minus 6, is close to N(0, 1).
        (0..12).map(|_| (rand() + 1.0) / 2.0).sum::<f64>() - 6.0
    };
    let mut writer = ParquetWriter::create(
        path,
        &["a".to_string(), "b".to_string()],
        "label",
        Compression::None,
        4_096,
    )
    .unwrap();
    let n = 20_000;
    let (mut a, mut b, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (xa, xb) = (10.0 * gaussian(&mut rand), 0.1 * gaussian(&mut rand));
        a.push(xa as f32);
        b.push(xb as f32);
        y.push((0.3 * xa + 20.0 * xb + 0.1 * gaussian(&mut rand)) as f32);
    }
    writer.write_columns(vec![a, b], y).unwrap();
    writer.finish().unwrap();
}

#[test]
fn adam_reaches_the_loss_target_in_fewer_epochs_than_sgd_on_an_ill_conditioned_problem() {
    let dir = common::tempdir();
    let data = dir.path().join("ill.parquet");
    ill_conditioned(&data);
    let epochs_to_target = |kind: OptimizerKind, lr: f32| {
        let mut config = common::config(&data, BatchSize::Rows(64));
        config.trainer.model = ModelSpec::linear();
        config.trainer.optimizer.kind = kind;
        config.trainer.optimizer.learning_rate = lr;
        config.trainer.epochs = 15;
        config.trainer.eval = Eval::EveryEpoch;
        let result = common::fit(&config);
        let losses: Vec<f64> = result.epochs.iter().map(|e| e.full_loss.unwrap()).collect();
        // Noise variance is 0.01; 0.05 means both weights are close to the truth.
        let reached = losses.iter().position(|&l| l < 0.05).map(|e| e + 1);
        (reached, losses)
    };
    // SGD's largest stable step is about 2 / (2·10²) = 0.01: take half of it.
    let (sgd, sgd_losses) = epochs_to_target(OptimizerKind::Sgd, 0.005);
    let (adam, adam_losses) = epochs_to_target(OptimizerKind::Adam, 0.05);
    let adam = adam.unwrap_or_else(|| panic!("adam never reached the target: {adam_losses:?}"));
    assert!(
        adam < sgd.unwrap_or(u64::MAX as usize),
        "adam reached the target after {adam} epochs, sgd after {sgd:?} ({sgd_losses:?})"
    );
    assert!(adam <= 5, "adam took {adam} epochs: {adam_losses:?}");
}

/// Copies the generated Parquet files of `from` into one file with every label flipped
/// (y → 1 − y): a validation set that gets worse exactly as training gets better.
fn flipped_labels(from: &Path, to: &Path, features: usize) {
    let names: Vec<String> = (0..features).map(|j| format!("f{j}")).collect();
    let mut writer = ParquetWriter::create(to, &names, "label", Compression::None, 4_096).unwrap();
    for file in common::parquet_files(from) {
        for batch in common::read_parquet(&file) {
            let column = |name: &str| common::f32_column(std::slice::from_ref(&batch), name);
            let columns = names.iter().map(|n| column(n)).collect();
            let labels = column("label").iter().map(|y| 1.0 - y).collect();
            writer.write_columns(columns, labels).unwrap();
        }
    }
    writer.finish().unwrap();
}

#[test]
fn early_stopping_keeps_the_best_epoch_and_stops_when_patience_runs_out() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 8_000, 4, 2, 2_000, 3);
    let valid = dir.path().join("flipped.parquet");
    flipped_labels(&data, &valid, 4);
    let mut config = common::config(&data, BatchSize::Rows(64));
    config.trainer.optimizer.learning_rate = 0.05;
    config.trainer.epochs = 10;
    config.trainer.early_stop = Some(2);
    config.valid = vec![valid.clone()];
    let result = train_with_valid(&config, &valid);
    // Every epoch fits the training labels better, so the flipped validation loss only rises:
    // epoch 1 stays the best, epochs 2 and 3 use up the patience, and training stops there.
    let losses: Vec<f64> = result
        .epochs
        .iter()
        .map(|e| e.valid.unwrap().loss)
        .collect();
    assert_eq!(result.epochs.len(), 3, "validation losses {losses:?}");
    assert!(losses.windows(2).all(|w| w[1] > w[0]), "{losses:?}");
    assert_eq!(result.best_epoch, Some(1));
    assert_eq!(result.stopped_early, Some(3));
    // The kept parameters are epoch 1's, bit for bit.
    config.trainer.epochs = 1;
    config.trainer.early_stop = None;
    let one = common::fit(&config);
    assert_eq!(common::bits(&result.params), common::bits(&one.params));
}
