//! A dense 3x3 convolution (padding 1, stride 1 or 2) over a few input channels, with bias and
//! ReLU6: MobileNetV2's stem (RGB → 32 channels) in the frozen forward pass on burn's flex
//! backend. burn-flex's small-channel path for it took ~10 % of a frozen pass after the
//! depthwise kernels; this one reuses their padded planes and nine-tap rows (src/depthwise.rs):
//! each output row sums the taps of every input channel.

use crate::depthwise::{for_each_plane, row_taps, taps, Depthwise3x3, RowStart};

/// Input channels up to which [`SmallConv3x3`] is used; with more, an im2col + gemm
/// convolution (burn's) reuses each loaded input better.
pub const MAX_SMALL_CONV_CHANNELS: usize = 4;

/// One layer's geometry: `[batch, c_in, height, width]` in, `c_out` planes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallConv3x3 {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub height: usize,
    pub width: usize,
    pub stride: usize,
}

impl SmallConv3x3 {
    /// The per-plane geometry shared with the depthwise kernel.
    fn plane(&self) -> Depthwise3x3 {
        Depthwise3x3 { batch: 1, channels: 1, height: self.height, width: self.width, stride: self.stride }
    }

    pub fn out_size(&self) -> (usize, usize) {
        self.plane().out_size()
    }

    /// `input` NCHW, `weight` `[c_out, c_in, 3, 3]`, `bias` `[c_out]`; returns NCHW output,
    /// clamped to [0, 6] with `relu6`.
    pub fn run(&self, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        assert!(self.stride == 1 || self.stride == 2, "conv 3x3: stride {} unsupported", self.stride);
        let in_plane = self.height * self.width;
        assert_eq!(input.len(), self.batch * self.c_in * in_plane, "conv 3x3: input size");
        assert_eq!(weight.len(), self.c_out * self.c_in * 9, "conv 3x3: weight size");
        assert_eq!(bias.len(), self.c_out, "conv 3x3: bias size");
        let plane = self.plane();
        let (oh, ow) = plane.out_size();
        let mut output = vec![0.0f32; self.batch * self.c_out * oh * ow];
        let mut padded = vec![Vec::new(); self.c_in];
        if self.c_in == 0 || output.is_empty() {
            return output;
        }
        for (b, out) in output.chunks_mut(self.c_out * oh * ow).enumerate() {
            // The few input planes are padded once per image, then read by every output plane.
            for (ci, scratch) in padded.iter_mut().enumerate() {
                let start = (b * self.c_in + ci) * in_plane;
                plane.fill_padded(&input[start..start + in_plane], scratch);
            }
            for_each_plane(out, oh * ow, |co, out, _| {
                for (o, row) in out.chunks_exact_mut(ow).enumerate() {
                    for (ci, scratch) in padded.iter().enumerate() {
                        let start = if ci == 0 { RowStart::Bias(bias[co]) } else { RowStart::Accumulate };
                        let last = ci + 1 == self.c_in;
                        row_taps(
                            row,
                            plane.tap_runs(scratch, o),
                            taps(weight, co * self.c_in + ci),
                            start,
                            relu6 && last,
                        );
                    }
                }
            });
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_test_data::{tap_source, values};

    /// Direct definition: zero padding 1, cross-correlation as in PyTorch.
    fn reference(g: &SmallConv3x3, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        let (oh, ow) = g.out_size();
        let mut out = Vec::new();
        for n in 0..g.batch {
            for co in 0..g.c_out {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut s = bias[co];
                        for ci in 0..g.c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = tap_source(y, g.stride, ky, g.height);
                                    let ix = tap_source(x, g.stride, kx, g.width);
                                    if let (Some(iy), Some(ix)) = (iy, ix) {
                                        let i = ((n * g.c_in + ci) * g.height + iy) * g.width + ix;
                                        s += weight[((co * g.c_in + ci) * 3 + ky) * 3 + kx] * input[i];
                                    }
                                }
                            }
                        }
                        out.push(if relu6 { s.clamp(0.0, 6.0) } else { s });
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition() {
        for (c_in, height, width) in [(1, 1, 1), (3, 5, 4), (3, 8, 7), (2, 9, 12)] {
            for stride in [1, 2] {
                for relu6 in [false, true] {
                    let g = SmallConv3x3 { batch: 2, c_in, c_out: 5, height, width, stride };
                    let input = values(2 * c_in * height * width, 3, 2.0);
                    let weight = values(5 * c_in * 9, 17, 2.0);
                    let bias = values(5, 29, 2.0);
                    let got = g.run(&input, &weight, &bias, relu6);
                    let want = reference(&g, &input, &weight, &bias, relu6);
                    assert_eq!(got.len(), want.len());
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!((a - b).abs() < 1e-4, "{g:?} relu6={relu6} at {i}: {a} vs {b}");
                    }
                }
            }
        }
    }
}
