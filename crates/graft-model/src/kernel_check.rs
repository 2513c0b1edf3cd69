//! The outcome of checking graft's GPU kernels against their definition (the checks
//! themselves are in `gpu::check`, built with the `gpu` feature; this part is shared with
//! builds without it, such as the page's protocol).

use serde::{Deserialize, Serialize};

/// One quantity of one kernel case compared with its definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelCheck {
    /// The kernel (or kernels) under test, e.g. "depthwise 3×3".
    pub kernel: String,
    /// The case: shapes, stride, options.
    pub case: String,
    /// What was compared: "output", "dx", "dw"…
    pub quantity: String,
    /// Largest absolute difference over the reference's largest magnitude (at least 1), or
    /// infinite for a NaN or a wrong length.
    pub diff: f32,
    pub allowed: f32,
}

impl KernelCheck {
    pub fn passed(&self) -> bool {
        self.diff <= self.allowed
    }
}

/// Compares `got` with `want` relative to the reference's scale (so large sums compare fairly).
pub fn compare(kernel: &str, case: &str, quantity: &str, got: &[f32], want: &[f32], allowed: f32) -> KernelCheck {
    let scale = want.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
    let diff = if got.len() == want.len() {
        got.iter().zip(want).fold(0.0f32, |m, (a, b)| {
            let d = (a - b).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                m.max(d)
            }
        }) / scale
    } else {
        f32::INFINITY
    };
    KernelCheck { kernel: kernel.into(), case: case.into(), quantity: quantity.into(), diff, allowed }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn differences_scale_with_the_reference_and_nan_or_a_wrong_length_fail() {
        let close = compare("k", "c", "q", &[100.0, 1.0], &[100.005, 1.0], 1e-4);
        assert!(close.passed(), "{close:?}");
        let off = compare("k", "c", "q", &[100.0, 1.0], &[100.0, 1.1], 1e-4);
        assert!(!off.passed(), "{off:?}");
        assert!(!compare("k", "c", "q", &[f32::NAN], &[1.0], 1e-4).passed());
        assert!(!compare("k", "c", "q", &[1.0], &[1.0, 2.0], 1e-4).passed());
    }
}
