//! Which GEMM the MLP uses: the `gemm` crate against `matrixmultiply` (and a naive loop as
//! the floor), on the three products of one dense layer's forward and backward pass over a
//! chunk of rows, single-threaded as the trainer calls them (parallelism is the trainer's
//! fixed chunk split). Shapes: a 64 → 64 layer and a 64 → 32 layer, chunks of 256 and 1,024
//! rows (the trainer's chunk size). Run with `cargo bench --bench gemm`; the results are in
//! docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A product `dst [m × n] (+)= lhs [m × k] · rhs [k × n]` with strides (row, column).
#[derive(Clone, Copy)]
struct Product {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    lhs: (isize, isize),
    rhs: (isize, isize),
    accumulate: bool,
}

/// The three products of a layer with `i` inputs and `o` outputs over `rows` rows, laid out
/// as the trainer lays them out (all row-major: A [rows × i], W [o × i], ∂Z [rows × o]).
fn layer(rows: usize, i: usize, o: usize) -> [Product; 3] {
    let (i_i, o_i) = (i as isize, o as isize);
    [
        // Z = A · Wᵀ
        Product {
            name: "forward Z=A·Wt",
            m: rows,
            n: o,
            k: i,
            lhs: (i_i, 1),
            rhs: (1, i_i),
            accumulate: false,
        },
        // ∂W += ∂Zᵀ · A
        Product {
            name: "backward dW+=dZt·A",
            m: o,
            n: i,
            k: rows,
            lhs: (1, o_i),
            rhs: (i_i, 1),
            accumulate: true,
        },
        // ∂A = ∂Z · W
        Product {
            name: "backward dA=dZ·W",
            m: rows,
            n: i,
            k: o,
            lhs: (o_i, 1),
            rhs: (i_i, 1),
            accumulate: false,
        },
    ]
}

fn run_gemm(p: &Product, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    // SAFETY: the buffers are sized for the shapes by `bench` below.
    unsafe {
        gemm::gemm(
            p.m,
            p.n,
            p.k,
            dst.as_mut_ptr(),
            1,
            p.n as isize,
            p.accumulate,
            lhs.as_ptr(),
            p.lhs.1,
            p.lhs.0,
            rhs.as_ptr(),
            p.rhs.1,
            p.rhs.0,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn run_matrixmultiply(p: &Product, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    let beta = if p.accumulate { 1.0 } else { 0.0 };
    // SAFETY: the buffers are sized for the shapes by `bench` below.
    unsafe {
        matrixmultiply::sgemm(
            p.m,
            p.k,
            p.n,
            1.0,
            lhs.as_ptr(),
            p.lhs.0,
            p.lhs.1,
            rhs.as_ptr(),
            p.rhs.0,
            p.rhs.1,
            beta,
            dst.as_mut_ptr(),
            p.n as isize,
            1,
        );
    }
}

fn run_naive(p: &Product, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    for r in 0..p.m {
        for c in 0..p.n {
            let mut sum = 0.0f32;
            for t in 0..p.k {
                let a = lhs[(r as isize * p.lhs.0 + t as isize * p.lhs.1) as usize];
                let b = rhs[(t as isize * p.rhs.0 + c as isize * p.rhs.1) as usize];
                sum += a * b;
            }
            let out = &mut dst[r * p.n + c];
            *out = if p.accumulate { *out + sum } else { sum };
        }
    }
}

fn bench(c: &mut Criterion) {
    for (rows, i, o) in [(256, 64, 64), (1024, 64, 64), (1024, 64, 32)] {
        for product in layer(rows, i, o) {
            let size = |rows: usize, cols: usize| rows * cols;
            let lhs: Vec<f32> = (0..size(product.m, product.k))
                .map(|v| (v % 17) as f32 * 0.1)
                .collect();
            let rhs: Vec<f32> = (0..size(product.k, product.n))
                .map(|v| (v % 13) as f32 * 0.1)
                .collect();
            let mut dst = vec![0.0f32; size(product.m, product.n)];
            let mut group = c.benchmark_group(format!("{} rows={rows} {i}->{o}", product.name));
            group.throughput(Throughput::Elements(
                (2 * product.m * product.n * product.k) as u64,
            ));
            group.bench_function("gemm", |b| {
                b.iter(|| run_gemm(&product, black_box(&lhs), black_box(&rhs), &mut dst))
            });
            group.bench_function("matrixmultiply", |b| {
                b.iter(|| run_matrixmultiply(&product, black_box(&lhs), black_box(&rhs), &mut dst))
            });
            group.bench_function("naive", |b| {
                b.iter(|| run_naive(&product, black_box(&lhs), black_box(&rhs), &mut dst))
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
