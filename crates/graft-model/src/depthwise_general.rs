//! Depthwise convolutions with any odd kernel (3×3, 5×5), any zero padding (TensorFlow's
//! asymmetric SAME included) and stride 1 or 2, with bias and ReLU6 fused, and their input and
//! weight gradients, on plain `f32` slices: EfficientNet-Lite0's depthwise layers on flex.
//! (MobileNetV2's 3×3 layers with padding 1 keep the tuned kernel of [`crate::depthwise`].)
//!
//! The same scheme as that kernel: each plane is copied once into a zero-padded scratch (with
//! stride 2 its even and odd columns apart), so that each tap of an output row reads one
//! contiguous run and every inner loop is a plain multiply-add over equal-length slices that
//! the compiler vectorises.

use crate::cores;
use crate::depthwise::{dot, for_each_plane};

/// One depthwise layer's geometry: `[batch, channels, height, width]` in, a square `kernel`,
/// stride 1 or 2, and zero padding `(before, after)` on rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseGeneral {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    /// (top, bottom)
    pub pad_rows: (usize, usize),
    /// (left, right)
    pub pad_cols: (usize, usize),
}

impl DepthwiseGeneral {
    /// Output height and width.
    pub fn out_size(&self) -> (usize, usize) {
        let (ph, pw) = self.padded();
        ((ph - self.kernel) / self.stride + 1, (pw - self.kernel) / self.stride + 1)
    }

    fn padded(&self) -> (usize, usize) {
        (self.height + self.pad_rows.0 + self.pad_rows.1, self.width + self.pad_cols.0 + self.pad_cols.1)
    }

    fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Whether the geometry is one the kernel computes: stride 1 or 2, the padded plane at least
    /// one kernel wide, padding narrower than the kernel.
    pub fn fits(&self) -> bool {
        let (ph, pw) = self.padded();
        let k = self.kernel;
        matches!(self.stride, 1 | 2)
            && k % 2 == 1
            && ph >= k
            && pw >= k
            && [self.pad_rows.0, self.pad_rows.1, self.pad_cols.0, self.pad_cols.1].iter().all(|&p| p < k)
    }

    /// Where padded column `p` sits in a scratch row: in place with stride 1; with stride 2 the
    /// even columns first, then the odd ones, so that the columns one tap reads for consecutive
    /// outputs (`2i + j`) are consecutive.
    fn column(&self, p: usize) -> usize {
        if self.stride == 1 {
            p
        } else if p.is_multiple_of(2) {
            p / 2
        } else {
            self.padded().1.div_ceil(2) + p / 2
        }
    }

    /// Copies one input plane into `scratch`, zero-padded, in [`Self::column`]'s layout.
    fn fill_padded(&self, input: &[f32], scratch: &mut Vec<f32>) {
        let ((ph, pw), (top, left)) = (self.padded(), (self.pad_rows.0, self.pad_cols.0));
        scratch.clear();
        scratch.resize(ph * pw, 0.0);
        for (r, row) in input.chunks_exact(self.width).enumerate() {
            let dst = &mut scratch[(r + top) * pw..(r + top + 1) * pw];
            if self.stride == 1 {
                dst[left..left + self.width].copy_from_slice(row);
            } else {
                for (x, &v) in row.iter().enumerate() {
                    dst[self.column(x + left)] = v;
                }
            }
        }
    }

    fn check(&self, input_len: usize, weight_len: usize) {
        assert!(self.fits(), "depthwise: geometry {self:?} unsupported");
        assert_eq!(input_len, self.batch * self.channels * self.height * self.width, "depthwise: input size");
        assert_eq!(weight_len, self.channels * self.taps(), "depthwise: weight size");
    }

    /// `input` is NCHW, `weight` `[channels, 1, k, k]`, `bias` `[channels]`; returns NCHW output.
    /// With `relu6` the output is clamped to [0, 6] (NaN stays NaN, as in PyTorch).
    pub fn run(&self, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        self.check(input.len(), weight.len());
        assert_eq!(bias.len(), self.channels, "depthwise: bias size");
        let ((oh, ow), k, pw) = (self.out_size(), self.kernel, self.padded().1);
        let in_plane = self.height * self.width;
        let mut output = vec![0.0f32; self.batch * self.channels * oh * ow];
        for_each_plane(&mut output, oh * ow, |index, out, scratch| {
            let c = index % self.channels;
            self.fill_padded(&input[index * in_plane..(index + 1) * in_plane], scratch);
            let taps = &weight[c * k * k..(c + 1) * k * k];
            for (o, out_row) in out.chunks_exact_mut(ow).enumerate() {
                out_row.fill(bias[c]);
                for kr in 0..k {
                    let r = o * self.stride + kr;
                    let row = &scratch[r * pw..(r + 1) * pw];
                    for kc in 0..k {
                        let (t, run) = (taps[kr * k + kc], &row[self.column(kc)..][..ow]);
                        for (y, &v) in out_row.iter_mut().zip(run) {
                            *y += t * v;
                        }
                    }
                }
                if relu6 {
                    out_row.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0));
                }
            }
        });
        output
    }

    /// Gradient with respect to the input, given the output gradient `grad` (NCHW, output size):
    /// every output gradient adds `tap · g` to the padded positions it read (one contiguous run
    /// per tap and output row), then the padding is dropped.
    pub fn input_grad(&self, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let ((oh, ow), k, (ph, pw)) = (self.out_size(), self.kernel, self.padded());
        assert_eq!(grad.len(), self.batch * self.channels * oh * ow, "depthwise: gradient size");
        self.check(self.batch * self.channels * self.height * self.width, weight.len());
        let (w, top, left) = (self.width, self.pad_rows.0, self.pad_cols.0);
        let in_plane = self.height * w;
        let mut dx = vec![0.0f32; self.batch * self.channels * in_plane];
        for_each_plane(&mut dx, in_plane, |index, dx, scratch| {
            let c = index % self.channels;
            let taps = &weight[c * k * k..(c + 1) * k * k];
            scratch.clear();
            scratch.resize(ph * pw, 0.0);
            for (o, g) in grad[index * oh * ow..(index + 1) * oh * ow].chunks_exact(ow).enumerate() {
                for kr in 0..k {
                    let r = o * self.stride + kr;
                    let row = &mut scratch[r * pw..(r + 1) * pw];
                    for kc in 0..k {
                        let t = taps[kr * k + kc];
                        let start = self.column(kc);
                        for (d, &g) in row[start..start + ow].iter_mut().zip(g) {
                            *d += t * g;
                        }
                    }
                }
            }
            for (r, dx_row) in dx.chunks_exact_mut(w).enumerate() {
                let row = &scratch[(r + top) * pw..(r + top + 1) * pw];
                if self.stride == 1 {
                    dx_row.copy_from_slice(&row[left..left + w]);
                } else {
                    for (x, d) in dx_row.iter_mut().enumerate() {
                        *d = row[self.column(x + left)];
                    }
                }
            }
        });
        dx
    }

    /// Gradient with respect to the `[channels, 1, k, k]` weight, given the layer's input and
    /// its output gradient: per plane, one dot product per tap and output row; the planes of a
    /// channel are then summed.
    pub fn weight_grad(&self, input: &[f32], grad: &[f32]) -> Vec<f32> {
        let ((oh, ow), k, pw) = (self.out_size(), self.kernel, self.padded().1);
        self.check(input.len(), self.channels * self.taps());
        assert_eq!(grad.len(), self.batch * self.channels * oh * ow, "depthwise: gradient size");
        let in_plane = self.height * self.width;
        let plane = |index: usize, scratch: &mut Vec<f32>| -> Vec<f32> {
            self.fill_padded(&input[index * in_plane..(index + 1) * in_plane], scratch);
            let mut sums = vec![0.0f32; k * k];
            for (o, g) in grad[index * oh * ow..(index + 1) * oh * ow].chunks_exact(ow).enumerate() {
                for kr in 0..k {
                    let r = o * self.stride + kr;
                    let row = &scratch[r * pw..(r + 1) * pw];
                    for kc in 0..k {
                        sums[kr * k + kc] += dot(g, &row[self.column(kc)..][..ow]);
                    }
                }
            }
            sums
        };
        let per_plane: Vec<Vec<f32>> = cores::map_with_scratch(self.batch * self.channels, plane);
        let mut dw = vec![0.0f32; self.channels * k * k];
        for (i, sums) in per_plane.iter().enumerate() {
            let c = i % self.channels;
            for (d, s) in dw[c * k * k..(c + 1) * k * k].iter_mut().zip(sums) {
                *d += s;
            }
        }
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::tests::serially;
    use crate::kernel_test_data::values;

    /// The input row (or column) that output `o` reads through tap `t`, or `None` in the padding.
    fn source(o: usize, stride: usize, t: usize, before: usize, size: usize) -> Option<usize> {
        (o * stride + t).checked_sub(before).filter(|&v| v < size)
    }

    /// Forward output and both gradients straight from the definition (cross-correlation with
    /// zero padding, as in PyTorch and TensorFlow).
    fn reference(
        g: &DepthwiseGeneral,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        grad: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let ((oh, ow), k) = (g.out_size(), g.kernel);
        let (mut out, mut dx, mut dw) = (Vec::new(), vec![0.0f32; input.len()], vec![0.0f32; weight.len()]);
        for n in 0..g.batch {
            for c in 0..g.channels {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut s = bias[c];
                        let go = grad[((n * g.channels + c) * oh + y) * ow + x];
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = source(y, g.stride, ky, g.pad_rows.0, g.height);
                                let ix = source(x, g.stride, kx, g.pad_cols.0, g.width);
                                if let (Some(iy), Some(ix)) = (iy, ix) {
                                    let i = ((n * g.channels + c) * g.height + iy) * g.width + ix;
                                    let wi = c * k * k + ky * k + kx;
                                    s += weight[wi] * input[i];
                                    dx[i] += go * weight[wi];
                                    dw[wi] += go * input[i];
                                }
                            }
                        }
                        out.push(s);
                    }
                }
            }
        }
        (out, dx, dw)
    }

    fn assert_close(what: &str, g: &DepthwiseGeneral, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what} {g:?}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{what} {g:?} at {i}: {a} vs {b}");
        }
    }

    /// 3×3 and 5×5, strides 1 and 2, odd and even sizes, PyTorch's centred padding and
    /// TensorFlow's SAME (asymmetric at stride 2 on even sizes), plus a lopsided one.
    fn geometries() -> Vec<DepthwiseGeneral> {
        let mut out = Vec::new();
        for kernel in [3, 5] {
            for stride in [1, 2] {
                for (height, width) in [(1, 1), (2, 3), (5, 4), (7, 7), (8, 6), (13, 9), (4, 19)] {
                    let same = |size: usize| crate::blocks::Padding::Same.pads(size, kernel, stride);
                    let centred = ((kernel - 1) / 2, (kernel - 1) / 2);
                    for (pad_rows, pad_cols) in [(same(height), same(width)), (centred, centred), ((0, 2), (1, 0))] {
                        let g = DepthwiseGeneral {
                            batch: 2,
                            channels: 3,
                            height,
                            width,
                            kernel,
                            stride,
                            pad_rows,
                            pad_cols,
                        };
                        if g.fits() {
                            out.push(g);
                        }
                    }
                }
            }
        }
        out
    }

    fn check_against_definition() {
        let all = geometries();
        assert!(all.len() > 70, "{} geometries", all.len());
        for g in all {
            let (oh, ow) = g.out_size();
            let taps = g.channels * g.kernel * g.kernel;
            let input = values(g.batch * g.channels * g.height * g.width, 7, 4.0);
            let weight = values(taps, 3, 4.0);
            let bias = values(g.channels, 11, 4.0);
            let grad = values(g.batch * g.channels * oh * ow, 13, 4.0);
            let (out, dx, dw) = reference(&g, &input, &weight, &bias, &grad);
            assert_close("forward", &g, &g.run(&input, &weight, &bias, false), &out);
            let clamped: Vec<f32> = out.iter().map(|v| v.clamp(0.0, 6.0)).collect();
            assert_close("forward+relu6", &g, &g.run(&input, &weight, &bias, true), &clamped);
            assert_close("dx", &g, &g.input_grad(&grad, &weight), &dx);
            assert_close("dw", &g, &g.weight_grad(&input, &grad), &dw);
        }
    }

    #[test]
    fn matches_the_definition_forward_and_gradients() {
        check_against_definition();
    }

    /// The page's default engine runs these kernels on one thread: the same checks there.
    #[test]
    fn the_one_thread_branch_matches_the_definition() {
        serially(check_against_definition);
    }

    #[test]
    fn same_padding_is_tensorflows() {
        use crate::blocks::Padding::Same;
        assert_eq!(Same.pads(224, 3, 2), (0, 1));
        assert_eq!(Same.pads(224, 5, 2), (1, 2));
        assert_eq!(Same.pads(7, 3, 2), (1, 1));
        assert_eq!(Same.pads(112, 5, 1), (2, 2));
        assert_eq!(Same.pads(14, 1, 1), (0, 0));
    }
}
