//! A 3x3 depthwise convolution (padding 1, stride 1 or 2) with its bias and ReLU6 in one pass,
//! and its input and weight gradients, on plain `f32` slices: MobileNetV2's depthwise layers on
//! burn's flex CPU backend (see `flex_fast`), frozen and trainable.
//!
//! Why it exists: flex's own depthwise path accumulates each of the nine taps into the output
//! row separately (nine read-modify-write passes over short rows) and walks stride-2 rows with
//! a scalar strided loop; bias and ReLU6 are two more passes, the clamp on one thread. In
//! MobileNetV2 that made the depthwise layers over half of a frozen forward pass for ~3 % of its
//! FLOPs. Here each plane is copied once into a zero-padded scratch (stride 2: its even and odd
//! columns apart), so every output row is one branch-free loop of nine multiply-adds that the
//! compiler vectorises (SSE/AVX natively, simd128 in wasm).

use crate::cores;

/// One depthwise layer's geometry: `[batch, channels, height, width]` in, stride 1 or 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise3x3 {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub stride: usize,
}

impl Depthwise3x3 {
    /// Output height and width (padding 1, kernel 3).
    pub fn out_size(&self) -> (usize, usize) {
        ((self.height - 1) / self.stride + 1, (self.width - 1) / self.stride + 1)
    }

    /// `input` is NCHW, `weight` `[channels, 1, 3, 3]`, `bias` `[channels]`; returns NCHW output.
    /// With `relu6` the output is clamped to [0, 6] (NaN stays NaN, as in PyTorch).
    pub fn run(&self, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        assert!(self.stride == 1 || self.stride == 2, "depthwise 3x3: stride {} unsupported", self.stride);
        assert_eq!(input.len(), self.batch * self.channels * self.height * self.width, "depthwise 3x3: input size");
        assert_eq!(weight.len(), self.channels * 9, "depthwise 3x3: weight size");
        assert_eq!(bias.len(), self.channels, "depthwise 3x3: bias size");
        let (oh, ow) = self.out_size();
        let in_plane = self.height * self.width;
        let mut output = vec![0.0f32; self.batch * self.channels * oh * ow];
        for_each_plane(&mut output, oh * ow, |index, out, scratch| {
            let c = index % self.channels;
            let input = &input[index * in_plane..(index + 1) * in_plane];
            self.plane(input, taps(weight, c), bias[c], relu6, out, scratch);
        });
        output
    }

    /// One `(batch, channel)` plane.
    fn plane(&self, input: &[f32], taps: &[f32; 9], bias: f32, relu6: bool, out: &mut [f32], scratch: &mut Vec<f32>) {
        let (_, ow) = self.out_size();
        self.fill_padded(input, scratch);
        for (o, out_row) in out.chunks_exact_mut(ow).enumerate() {
            row_taps(out_row, self.tap_runs(scratch, o), taps, RowStart::Bias(bias), relu6);
        }
    }

    /// Width of a padded scratch row.
    fn padded_width(&self) -> usize {
        self.width + 2
    }

    /// Where a padded row's odd columns start (stride 2 keeps even and odd columns apart).
    fn evens(&self) -> usize {
        self.padded_width().div_ceil(2)
    }

    /// Copies one input plane into `scratch`, zero-padded by one on every side: scratch row r is
    /// input row r - 1. With stride 2 each row holds its even padded columns, then its odd ones,
    /// so that the three taps of a row read three contiguous runs.
    pub(crate) fn fill_padded(&self, input: &[f32], scratch: &mut Vec<f32>) {
        let (h, w, pw) = (self.height, self.width, self.padded_width());
        scratch.clear();
        scratch.resize((h + 2) * pw, 0.0);
        let evens = self.evens();
        for (r, row) in input.chunks_exact(w).enumerate() {
            let dst = &mut scratch[(r + 1) * pw..(r + 2) * pw];
            if self.stride == 1 {
                dst[1..=w].copy_from_slice(row);
            } else {
                // Padded column p = x + 1 goes to p / 2 (even p) or evens + p / 2 (odd p): input
                // column 2j is odd column j, input column 2j + 1 is even column j + 1.
                let (even, odd) = dst.split_at_mut(evens);
                let pairs = row.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    odd[w / 2] = *last;
                }
                for ((pair, o), e) in pairs.zip(odd.iter_mut()).zip(even[1..].iter_mut()) {
                    *o = pair[0];
                    *e = pair[1];
                }
            }
        }
    }

    /// The nine input runs (kernel row k, column j) that output row `o` reads from a padded plane.
    pub(crate) fn tap_runs<'a>(&self, scratch: &'a [f32], o: usize) -> [[&'a [f32]; 3]; 3] {
        let (pw, (_, ow), evens) = (self.padded_width(), self.out_size(), self.evens());
        let top = o * self.stride;
        [0, 1, 2].map(|k| {
            let r = &scratch[(top + k) * pw..(top + k + 1) * pw];
            if self.stride == 1 {
                [&r[..ow], &r[1..=ow], &r[2..ow + 2]]
            } else {
                [&r[..ow], &r[evens..evens + ow], &r[1..=ow]]
            }
        })
    }

    /// Gradient with respect to the input, given the output gradient `grad` (NCHW, output size).
    pub fn input_grad(&self, grad: &[f32], weight: &[f32]) -> Vec<f32> {
        let (oh, ow) = self.out_size();
        assert_eq!(grad.len(), self.batch * self.channels * oh * ow, "depthwise 3x3: gradient size");
        assert_eq!(weight.len(), self.channels * 9, "depthwise 3x3: weight size");
        if self.stride == 1 {
            // A stride-1 convolution's input gradient is the same convolution of the output
            // gradient with each kernel turned by 180°.
            let flipped: Vec<f32> = weight.chunks_exact(9).flat_map(|k| k.iter().rev().copied()).collect();
            return self.run(grad, &flipped, &vec![0.0; self.channels], false);
        }
        let in_plane = self.height * self.width;
        let mut dx = vec![0.0f32; self.batch * self.channels * in_plane];
        for_each_plane(&mut dx, in_plane, |index, dx, scratch| {
            let grad = &grad[index * oh * ow..(index + 1) * oh * ow];
            self.scatter_plane(grad, taps(weight, index % self.channels), dx, scratch);
        });
        dx
    }

    /// Stride 2: every output gradient adds `tap · g` to the three padded columns 2o, 2o + 1,
    /// 2o + 2 of three padded rows; in the even/odd layout those are three contiguous runs.
    fn scatter_plane(&self, grad: &[f32], taps: &[f32; 9], dx: &mut [f32], scratch: &mut Vec<f32>) {
        let (h, w, pw, evens) = (self.height, self.width, self.padded_width(), self.evens());
        let (_, ow) = self.out_size();
        scratch.clear();
        scratch.resize((h + 2) * pw, 0.0);
        for (o, g) in grad.chunks_exact(ow).enumerate() {
            for k in 0..3 {
                let row = &mut scratch[(2 * o + k) * pw..(2 * o + k + 1) * pw];
                let (even, odd) = row.split_at_mut(evens);
                let [t0, t1, t2] = [taps[3 * k], taps[3 * k + 1], taps[3 * k + 2]];
                for (e, &g) in even[..ow].iter_mut().zip(g) {
                    *e += t0 * g;
                }
                for (d, &g) in odd[..ow].iter_mut().zip(g) {
                    *d += t1 * g;
                }
                for (e, &g) in even[1..=ow].iter_mut().zip(g) {
                    *e += t2 * g;
                }
            }
        }
        // Back to plain columns, dropping the padding: input column 2j is odd padded column j,
        // input column 2j + 1 is even padded column j + 1.
        for (r, dx_row) in dx.chunks_exact_mut(w).enumerate() {
            let (even, odd) = scratch[(r + 1) * pw..(r + 2) * pw].split_at(evens);
            let mut pairs = dx_row.chunks_exact_mut(2);
            for ((pair, &o), &e) in pairs.by_ref().zip(odd).zip(&even[1..]) {
                pair[0] = o;
                pair[1] = e;
            }
            if let [last] = pairs.into_remainder() {
                *last = odd[w / 2];
            }
        }
    }

    /// Gradient with respect to the `[channels, 1, 3, 3]` weight, given the layer's input and
    /// its output gradient.
    pub fn weight_grad(&self, input: &[f32], grad: &[f32]) -> Vec<f32> {
        let (oh, ow) = self.out_size();
        let in_plane = self.height * self.width;
        assert_eq!(input.len(), self.batch * self.channels * in_plane, "depthwise 3x3: input size");
        assert_eq!(grad.len(), self.batch * self.channels * oh * ow, "depthwise 3x3: gradient size");
        let plane = |index: usize, scratch: &mut Vec<f32>| -> [f32; 9] {
            self.fill_padded(&input[index * in_plane..(index + 1) * in_plane], scratch);
            let mut sums = [0.0f32; 9];
            for (o, g) in grad[index * oh * ow..(index + 1) * oh * ow].chunks_exact(ow).enumerate() {
                let runs = self.tap_runs(scratch, o);
                for (t, sum) in sums.iter_mut().enumerate() {
                    *sum += dot(g, runs[t / 3][t % 3]);
                }
            }
            sums
        };
        let per_plane: Vec<[f32; 9]> = cores::map_with_scratch(self.batch * self.channels, plane);
        let mut dw = vec![0.0f32; self.channels * 9];
        for (i, sums) in per_plane.iter().enumerate() {
            let c = i % self.channels;
            for (d, s) in dw[c * 9..c * 9 + 9].iter_mut().zip(sums) {
                *d += s;
            }
        }
        dw
    }
}

/// Channel `c`'s nine weights.
pub(crate) fn taps(weight: &[f32], c: usize) -> &[f32; 9] {
    weight[c * 9..c * 9 + 9].try_into().expect("nine taps")
}

/// Calls `f(index, plane, scratch)` for every `plane_len`-long plane of `out` (on every core with
/// the `parallel` feature); each worker reuses one scratch buffer.
pub(crate) fn for_each_plane(
    out: &mut [f32],
    plane_len: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync + Send,
) {
    cores::for_each_chunk_mut(out, plane_len, f);
}

/// Σ a[i]·b[i] over eight lanes, so that the sum vectorises (a single f32 accumulator would pin
/// the additions in order).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0.0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += ca[l] * cb[l];
        }
    }
    let tail = n / 8 * 8;
    lanes.iter().sum::<f32>() + a[tail..].iter().zip(&b[tail..]).map(|(x, y)| x * y).sum::<f32>()
}

/// Where a row's sum starts: at a bias (the row is overwritten), or at the row's current
/// values (another input channel's taps are added to it).
#[derive(Clone, Copy)]
pub(crate) enum RowStart {
    Bias(f32),
    Accumulate,
}

/// `out[i] = start + Σ taps[3·k + j] · runs[k][j][i]`, then ReLU6 if asked: nine equal-length
/// runs, so each loop has no bounds checks or branches and vectorises.
#[inline(always)]
pub(crate) fn row_taps(out: &mut [f32], runs: [[&[f32]; 3]; 3], taps: &[f32; 9], start: RowStart, relu6: bool) {
    let n = out.len();
    let [[a0, a1, a2], [b0, b1, b2], [c0, c1, c2]] = runs.map(|r| r.map(|s| &s[..n]));
    let [t0, t1, t2, t3, t4, t5, t6, t7, t8] = *taps;
    // A macro, not a closure: each of the four loops below must stay a plain indexed loop over
    // equal-length slices for the compiler to vectorise it.
    macro_rules! sum {
        ($i:expr) => {
            t0 * a0[$i]
                + t1 * a1[$i]
                + t2 * a2[$i]
                + t3 * b0[$i]
                + t4 * b1[$i]
                + t5 * b2[$i]
                + t6 * c0[$i]
                + t7 * c1[$i]
                + t8 * c2[$i]
        };
    }
    // f32::clamp keeps NaN (f32::max/min would turn it into a bound).
    match (start, relu6) {
        (RowStart::Bias(bias), false) => {
            for i in 0..n {
                out[i] = bias + sum!(i);
            }
        }
        (RowStart::Bias(bias), true) => {
            for i in 0..n {
                out[i] = (bias + sum!(i)).clamp(0.0, 6.0);
            }
        }
        (RowStart::Accumulate, false) => {
            for i in 0..n {
                out[i] += sum!(i);
            }
        }
        (RowStart::Accumulate, true) => {
            for i in 0..n {
                out[i] = (out[i] + sum!(i)).clamp(0.0, 6.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::tests::serially;
    use crate::kernel_test_data::{tap_source, values};

    /// Direct definition: zero padding 1, cross-correlation as in PyTorch.
    fn reference(g: &Depthwise3x3, input: &[f32], weight: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
        let (oh, ow) = g.out_size();
        let mut out = Vec::new();
        for n in 0..g.batch {
            for c in 0..g.channels {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut s = bias[c];
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = tap_source(y, g.stride, ky, g.height);
                                let ix = tap_source(x, g.stride, kx, g.width);
                                if let (Some(iy), Some(ix)) = (iy, ix) {
                                    let i = ((n * g.channels + c) * g.height + iy) * g.width + ix;
                                    s += weight[c * 9 + ky * 3 + kx] * input[i];
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
    fn matches_the_definition_for_both_strides_odd_and_even_sizes() {
        check_forward();
    }

    #[test]
    fn gradients_match_the_definition_for_both_strides() {
        check_gradients();
    }

    /// The page's default engine runs these kernels on one thread: the same checks on that branch.
    #[test]
    fn the_one_thread_branch_matches_the_definition() {
        serially(check_forward);
        serially(check_gradients);
    }

    fn check_forward() {
        for (height, width) in [(1, 1), (2, 3), (5, 4), (7, 7), (8, 6), (13, 9)] {
            for stride in [1, 2] {
                for relu6 in [false, true] {
                    let g = Depthwise3x3 { batch: 2, channels: 3, height, width, stride };
                    let input = values(2 * 3 * height * width, 7, 4.0);
                    let weight = values(27, 3, 4.0);
                    let bias = values(3, 11, 4.0);
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

    /// Both gradients straight from the definition: every (output, tap) pair that reads input
    /// (iy, ix) adds `g · w` to its input gradient and `g · x` to its weight gradient.
    fn reference_grads(g: &Depthwise3x3, input: &[f32], weight: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (oh, ow) = g.out_size();
        let mut dx = vec![0.0f32; input.len()];
        let mut dw = vec![0.0f32; weight.len()];
        for n in 0..g.batch {
            for c in 0..g.channels {
                for y in 0..oh {
                    for x in 0..ow {
                        let go = grad[((n * g.channels + c) * oh + y) * ow + x];
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = tap_source(y, g.stride, ky, g.height);
                                let ix = tap_source(x, g.stride, kx, g.width);
                                if let (Some(iy), Some(ix)) = (iy, ix) {
                                    let i = ((n * g.channels + c) * g.height + iy) * g.width + ix;
                                    dx[i] += go * weight[c * 9 + ky * 3 + kx];
                                    dw[c * 9 + ky * 3 + kx] += go * input[i];
                                }
                            }
                        }
                    }
                }
            }
        }
        (dx, dw)
    }

    fn check_gradients() {
        for (height, width) in [(1, 1), (2, 3), (5, 4), (7, 7), (8, 6), (13, 9), (4, 19)] {
            for stride in [1, 2] {
                let g = Depthwise3x3 { batch: 2, channels: 3, height, width, stride };
                let (oh, ow) = g.out_size();
                let input = values(2 * 3 * height * width, 5, 4.0);
                let weight = values(27, 9, 4.0);
                let grad = values(2 * 3 * oh * ow, 13, 4.0);
                let (want_dx, want_dw) = reference_grads(&g, &input, &weight, &grad);
                let got_dx = g.input_grad(&grad, &weight);
                let got_dw = g.weight_grad(&input, &grad);
                for (what, got, want) in [("dx", got_dx, want_dx), ("dw", got_dw, want_dw)] {
                    assert_eq!(got.len(), want.len(), "{what} {g:?}");
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what} {g:?} at {i}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn relu6_keeps_nan() {
        let g = Depthwise3x3 { batch: 1, channels: 1, height: 1, width: 1, stride: 1 };
        let out = g.run(&[f32::NAN], &[1.0; 9], &[0.0], true);
        assert!(out[0].is_nan());
    }
}
