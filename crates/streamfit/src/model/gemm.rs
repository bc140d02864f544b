//! One strided matrix product on the `gemm` crate, single-threaded: the only unsafe code the
//! networks need, with the bounds it relies on checked up front.
//!
//! Parallelism is the trainer's fixed chunk split, never this product's, so a chunk's result
//! depends on its rows only (bit-identical for any thread count).

/// `dst [m × n]` (row stride `dst_rs`, unit column stride) = `lhs [m × k] · rhs [k × n]`,
/// added to `dst` when `accumulate`. Matrices are (slice, row stride, column stride).
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    (lhs, lhs_rs, lhs_cs): (&[f32], isize, isize),
    (rhs, rhs_rs, rhs_cs): (&[f32], isize, isize),
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: isize, cs: isize| {
        (rows.saturating_sub(1) as isize * rs + cols.saturating_sub(1) as isize * cs) as usize
    };
    assert!(last(m, n, dst_rs as isize, 1) < dst.len(), "dst bounds");
    if k > 0 {
        assert!(last(m, k, lhs_rs, lhs_cs) < lhs.len(), "lhs bounds");
        assert!(last(k, n, rhs_rs, rhs_cs) < rhs.len(), "rhs bounds");
    }
    // SAFETY: the asserts above keep every element gemm touches inside the three slices, and
    // `dst` is borrowed mutably, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
