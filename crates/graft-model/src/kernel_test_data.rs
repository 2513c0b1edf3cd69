//! Shared inputs and index arithmetic for the CPU kernels' tests against direct definitions.

/// `len` deterministic values in [-half_range, half_range).
pub fn values(len: usize, seed: u32, half_range: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / 16_777_216.0 * 2.0 * half_range - half_range
        })
        .collect()
}

/// The input row (or column) that output position `o` reads through kernel tap `k` of a 3x3
/// convolution with padding 1, or `None` where that falls in the padding.
pub fn tap_source(o: usize, stride: usize, k: usize, size: usize) -> Option<usize> {
    (o * stride + k).checked_sub(1).filter(|&v| v < size)
}
