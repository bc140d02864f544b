//! Column-to-row transpose of eight float32 columns, with the non-finite check folded in.
//!
//! Parquet hands columns; the pipeline wants row-major rows. Eight columns at a time fill one
//! 32-byte slot per row. On x86-64 with AVX an 8 × 8 block is transposed in registers
//! (eight loads, 24 shuffles, eight stores); elsewhere a scalar loop does the same. Both check
//! every value for NaN and infinity on the way (an OR over the exponent bits), so the caller
//! needs no second pass over the rows. Both paths produce identical bytes.

use std::ops::Range;

/// Float32 bits with every exponent bit set: NaN and the infinities, and only they, have them
/// all set.
const EXPONENT: u32 = 0x7f80_0000;

/// Writes rows `rows` of eight float32 columns into
/// `out[(i - rows.start) * stride + offset..][..8]` and returns true when any of the values is
/// NaN or infinite. `out` must hold `rows.len()` rows of `stride` values and
/// `offset + 8 <= stride`.
pub fn transpose8(
    columns: [&[f32]; 8],
    rows: Range<usize>,
    out: &mut [f32],
    stride: usize,
    offset: usize,
) -> bool {
    let columns = columns.map(|c| &c[rows.clone()]);
    let n = rows.len();
    assert!(offset + 8 <= stride, "eight slots must fit in a row");
    assert!(out.len() >= n * stride, "output too short for {n} rows");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, checked just above; the bounds were asserted.
            return unsafe { transpose8_avx(columns, out, stride, offset) };
        }
    }
    transpose8_scalar(columns, 0, out, stride, offset)
}

/// The portable path: rows `from..` of the (already sliced) columns.
fn transpose8_scalar(
    columns: [&[f32]; 8],
    from: usize,
    out: &mut [f32],
    stride: usize,
    offset: usize,
) -> bool {
    let n = columns[0].len();
    let mut bad = 0u32;
    for i in from..n {
        let row: [f32; 8] = std::array::from_fn(|k| columns[k][i]);
        for v in row {
            bad |= u32::from(v.to_bits() & EXPONENT == EXPONENT);
        }
        out[i * stride + offset..i * stride + offset + 8].copy_from_slice(&row);
    }
    bad != 0
}

/// Eight rows at a time in AVX registers; the last `n % 8` rows take the scalar path.
///
/// # Safety
/// The CPU must support AVX, every column must have the same length `n`, and `out` must hold
/// `n * stride` values with `offset + 8 <= stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8_avx(
    columns: [&[f32]; 8],
    out: &mut [f32],
    stride: usize,
    offset: usize,
) -> bool {
    use std::arch::x86_64::*;

    let n = columns[0].len();
    assert!(
        columns.iter().all(|c| c.len() == n),
        "columns of equal length"
    );
    let exponent = _mm256_castsi256_ps(_mm256_set1_epi32(EXPONENT as i32));
    let mut bad = _mm256_setzero_ps();
    let out_ptr = out.as_mut_ptr();
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        if i.is_multiple_of(16) {
            for c in &columns {
                // A hint for the line 512 bytes ahead (may lie past the column: prefetches
                // never fault).
                _mm_prefetch::<_MM_HINT_T0>(c.as_ptr().wrapping_add(i + 128).cast());
            }
        }
        // SAFETY: i + 8 <= n, so each column has eight values at i.
        let r: [__m256; 8] =
            std::array::from_fn(|k| unsafe { _mm256_loadu_ps(columns[k].as_ptr().add(i)) });
        for v in r {
            // NaN or infinity: all exponent bits set, so the masked value is exactly the mask,
            // which read as a float is +inf (and +inf == +inf).
            bad = _mm256_or_ps(
                bad,
                _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_and_ps(v, exponent), exponent),
            );
        }
        // r[k] holds column k for rows i..i+8; produce row j's eight columns.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let rows = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        for (j, row) in rows.into_iter().enumerate() {
            // SAFETY: row i + j < n, and (i + j) * stride + offset + 8 <= n * stride <= out.len().
            unsafe { _mm256_storeu_ps(out_ptr.add((i + j) * stride + offset), row) };
        }
        i += 8;
    }
    let tail_bad = transpose8_scalar(columns, full, out, stride, offset);
    _mm256_movemask_ps(bad) != 0 || tail_bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(n: usize) -> Vec<Vec<f32>> {
        (0..8)
            .map(|k| (0..n).map(|i| (k * 1000 + i) as f32).collect())
            .collect()
    }

    fn reference(cols: &[Vec<f32>], rows: Range<usize>, stride: usize, offset: usize) -> Vec<f32> {
        let mut out = vec![-1.0; rows.len() * stride];
        for (r, i) in rows.enumerate() {
            for k in 0..8 {
                out[r * stride + offset + k] = cols[k][i];
            }
        }
        out
    }

    #[test]
    fn matches_the_reference_for_every_length_and_offset() {
        for n in [0, 1, 7, 8, 9, 16, 23, 257] {
            let cols = columns(n + 3);
            let refs: [&[f32]; 8] = std::array::from_fn(|k| cols[k].as_slice());
            for (stride, offset) in [(8, 0), (11, 3), (64, 56)] {
                let rows = 3..n + 3;
                let mut out = vec![-1.0; n * stride];
                assert!(!transpose8(refs, rows.clone(), &mut out, stride, offset));
                assert_eq!(out, reference(&cols, rows.clone(), stride, offset));
                let mut scalar = vec![-1.0; n * stride];
                let sliced = refs.map(|c| &c[rows.clone()]);
                assert!(!transpose8_scalar(sliced, 0, &mut scalar, stride, offset));
                assert_eq!(scalar, out);
            }
        }
    }

    #[test]
    fn reports_nan_and_infinity_anywhere() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (k, i) in [(0, 0), (7, 15), (3, 19)] {
                let mut cols = columns(20);
                cols[k][i] = bad;
                let refs: [&[f32]; 8] = std::array::from_fn(|k| cols[k].as_slice());
                let mut out = vec![0.0; 20 * 8];
                assert!(transpose8(refs, 0..20, &mut out, 8, 0), "{bad} at {k},{i}");
            }
        }
        let mut cols = columns(20);
        cols[2][5] = f32::MAX;
        cols[4][6] = f32::MIN_POSITIVE / 2.0; // subnormal
        let refs: [&[f32]; 8] = std::array::from_fn(|k| cols[k].as_slice());
        let mut out = vec![0.0; 20 * 8];
        assert!(!transpose8(refs, 0..20, &mut out, 8, 0));
    }
}
