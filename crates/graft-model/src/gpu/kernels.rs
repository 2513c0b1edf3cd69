//! CubeCL kernels for MobileNetV2's hot layers on GPUs (WebGPU, Vulkan, …), in NHWC: each
//! thread owns one channel of one pixel, so neighbouring threads read neighbouring addresses.
//!
//! Every layer is `y = act(s·u + b)` where `u` is the convolution and, for a trainable layer,
//! `s = γ/√(σ²+ε)`, `b = β − μ·s` (BatchNorm with its running statistics) computed in the kernel
//! from the four BatchNorm vectors, so no separate dispatches prepare them; a folded
//! (inference) layer passes its bias as `β` and `s = 1`.

use cubecl::prelude::*;

/// Per-channel scale and shift of `y = s·u + b` (see the module docs).
#[cube]
fn scale_shift(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    ch: usize,
    eps: f32,
    #[comptime] norm: bool,
) -> (f32, f32) {
    if norm {
        let s = gamma[ch] * (var[ch] + eps).inverse_sqrt();
        (s, beta[ch] - mean[ch] * s)
    } else {
        (1.0f32, beta[ch])
    }
}

#[cube]
fn activate(v: f32, #[comptime] relu6: bool) -> f32 {
    if relu6 {
        clamp_nan(v, 0.0f32, 6.0f32)
    } else {
        v
    }
}

/// The upstream gradient where ReLU6 did not clip, zero where it did (PyTorch's hardtanh
/// does the same).
#[cube]
fn through_relu6(g: f32, v: f32, #[comptime] relu6: bool) -> f32 {
    let mut out = g;
    if relu6 {
        if !(v > 0.0f32 && v < 6.0f32) {
            out = 0.0f32;
        }
    }
    out
}

/// The 3x3 depthwise convolution (padding 1) at one output channel of one pixel; `taps`
/// receives the nine input values (zero outside the image) for the weight gradient.
#[cube]
fn depthwise_sum(
    x: &[f32],
    w: &[f32],
    b: usize,
    oy: usize,
    ox: usize,
    ch: usize,
    h: usize,
    wd: usize,
    c: usize,
    #[comptime] stride: usize,
) -> f32 {
    let mut acc = 0.0f32;
    #[unroll]
    for ky in 0..3 {
        // Padded row `py` is input row `py - 1`.
        let py = oy * stride + ky;
        if py >= 1 && py <= h {
            let row = (b * h + py - 1) * wd;
            #[unroll]
            for kx in 0..3 {
                let px = ox * stride + kx;
                if px >= 1 && px <= wd {
                    acc += x[(row + px - 1) * c + ch] * w[ch * 9 + ky * 3 + kx];
                }
            }
        }
    }
    acc
}

/// Depthwise 3x3 forward: `y[b,oy,ox,c] = act(s·Σ w·x + b)`.
#[cube(launch_unchecked)]
pub fn depthwise_forward(
    x: &[f32],
    w: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    y: &mut [f32],
    h: usize,
    wd: usize,
    c: usize,
    oh: usize,
    ow: usize,
    eps: f32,
    #[comptime] stride: usize,
    #[comptime] norm: bool,
    #[comptime] relu6: bool,
) {
    let pos = ABSOLUTE_POS;
    if pos >= y.len() {
        terminate!();
    }
    let ch = pos % c;
    let pixel = pos / c;
    let ox = pixel % ow;
    let oy = (pixel / ow) % oh;
    let b = pixel / (ow * oh);
    let (s, shift) = scale_shift(gamma, beta, mean, var, ch, eps, norm);
    let u = depthwise_sum(x, w, b, oy, ox, ch, h, wd, c, stride);
    y[pos] = activate(u * s + shift, relu6);
}

/// Depthwise backward, first pass: for the output positions `[tile·rows, (tile+1)·rows)` of one
/// channel, the upstream gradient through ReLU6 and the scale (`gs = s·g'`, written for the
/// input gradient) and the tile's partial sums: Σg' (β), Σg'·x̂ (γ) and Σ gs·x per tap (w).
/// `partial` is `[tiles, 11, C]`.
#[cube(launch_unchecked)]
pub fn depthwise_backward_prepare(
    x: &[f32],
    w: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    gy: &[f32],
    gs: &mut [f32],
    partial: &mut [f32],
    h: usize,
    wd: usize,
    c: usize,
    oh: usize,
    ow: usize,
    positions: usize,
    rows: usize,
    tiles: usize,
    eps: f32,
    #[comptime] stride: usize,
    #[comptime] relu6: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= tiles * c {
        terminate!();
    }
    let ch = id % c;
    let tile = id / c;
    let inv_std = (var[ch] + eps).inverse_sqrt();
    let s = gamma[ch] * inv_std;
    let shift = beta[ch] - mean[ch] * s;
    let m = mean[ch];
    let mut sum_beta = 0.0f32;
    let mut sum_gamma = 0.0f32;
    let mut taps = Array::<f32>::new(9usize);
    #[unroll]
    for t in 0..9 {
        taps[t] = 0.0f32;
    }
    let start = tile * rows;
    let end = clamp_max(start + rows, positions);
    for pixel in start..end {
        let ox = pixel % ow;
        let oy = (pixel / ow) % oh;
        let b = pixel / (ow * oh);
        // The nine inputs, read once for both the convolution and the weight gradient.
        let mut xs = Array::<f32>::new(9usize);
        let mut u = 0.0f32;
        #[unroll]
        for ky in 0..3 {
            let py = oy * stride + ky;
            #[unroll]
            for kx in 0..3 {
                let px = ox * stride + kx;
                let mut v = 0.0f32;
                if py >= 1 && py <= h && px >= 1 && px <= wd {
                    v = x[((b * h + py - 1) * wd + px - 1) * c + ch];
                }
                xs[ky * 3 + kx] = v;
                u += v * w[ch * 9 + ky * 3 + kx];
            }
        }
        let idx = pixel * c + ch;
        let g = through_relu6(gy[idx], u * s + shift, relu6);
        let scaled = g * s;
        gs[idx] = scaled;
        sum_beta += g;
        sum_gamma += g * (u - m) * inv_std;
        #[unroll]
        for t in 0..9 {
            taps[t] += scaled * xs[t];
        }
    }
    let base = tile * 11 * c + ch;
    partial[base] = sum_beta;
    partial[base + c] = sum_gamma;
    #[unroll]
    for t in 0..9 {
        partial[base + (2 + t) * c] = taps[t];
    }
}

/// Depthwise backward, input gradient: the transposed convolution of `gs` (stride 1 or 2).
#[cube(launch_unchecked)]
pub fn depthwise_backward_input(
    gs: &[f32],
    w: &[f32],
    dx: &mut [f32],
    h: usize,
    wd: usize,
    c: usize,
    oh: usize,
    ow: usize,
    #[comptime] stride: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= dx.len() {
        terminate!();
    }
    let ch = pos % c;
    let pixel = pos / c;
    let ix = pixel % wd;
    let iy = (pixel / wd) % h;
    let b = pixel / (wd * h);
    let mut acc = 0.0f32;
    // Output `o` reads padded position `o·stride + k`, i.e. input `o·stride + k - 1`.
    #[unroll]
    for ky in 0..3 {
        let ny = iy + 1;
        if ny >= ky {
            let sy = ny - ky;
            let oy = sy / stride;
            if oy * stride == sy && oy < oh {
                #[unroll]
                for kx in 0..3 {
                    let nx = ix + 1;
                    if nx >= kx {
                        let sx = nx - kx;
                        let ox = sx / stride;
                        if ox * stride == sx && ox < ow {
                            acc += gs[((b * oh + oy) * ow + ox) * c + ch] * w[ch * 9 + ky * 3 + kx];
                        }
                    }
                }
            }
        }
    }
    dx[pos] = acc;
}

/// Depthwise backward, last pass: sums the tiles' partials into the gradients of β, γ and the
/// nine taps of each channel.
#[cube(launch_unchecked)]
pub fn depthwise_backward_finish(
    partial: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dw: &mut [f32],
    c: usize,
    tiles: usize,
) {
    let ch = ABSOLUTE_POS;
    if ch >= c {
        terminate!();
    }
    let mut sums = Array::<f32>::new(11usize);
    #[unroll]
    for k in 0..11 {
        sums[k] = 0.0f32;
    }
    for tile in 0..tiles {
        let base = tile * 11 * c + ch;
        #[unroll]
        for k in 0..11 {
            sums[k] += partial[base + k * c];
        }
    }
    dbeta[ch] = sums[0];
    dgamma[ch] = sums[1];
    #[unroll]
    for t in 0..9 {
        dw[ch * 9 + t] = sums[2 + t];
    }
}

/// The per-channel affine map and activation after a 1x1 convolution (a matmul over `[M, C]`
/// rows), optionally plus the block's residual: `y = act(s·z + b) (+ r)`.
#[cube(launch_unchecked)]
pub fn affine_forward(
    z: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    residual: &[f32],
    y: &mut [f32],
    c: usize,
    eps: f32,
    #[comptime] norm: bool,
    #[comptime] relu6: bool,
    #[comptime] add_residual: bool,
) {
    let pos = ABSOLUTE_POS;
    if pos >= y.len() {
        terminate!();
    }
    let ch = pos % c;
    let (s, shift) = scale_shift(gamma, beta, mean, var, ch, eps, norm);
    let mut v = activate(z[pos] * s + shift, relu6);
    if add_residual {
        v += residual[pos];
    }
    y[pos] = v;
}

/// Affine backward, first pass: `dz = s·g'` and the tile's partial sums Σg' (β) and Σg'·x̂ (γ)
/// for `[tile·rows, (tile+1)·rows)` rows of one channel; `partial` is `[tiles, 2, C]`.
#[cube(launch_unchecked)]
pub fn affine_backward_prepare(
    z: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    gy: &[f32],
    dz: &mut [f32],
    partial: &mut [f32],
    c: usize,
    m_rows: usize,
    rows: usize,
    tiles: usize,
    eps: f32,
    #[comptime] relu6: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= tiles * c {
        terminate!();
    }
    let ch = id % c;
    let tile = id / c;
    let inv_std = (var[ch] + eps).inverse_sqrt();
    let s = gamma[ch] * inv_std;
    let shift = beta[ch] - mean[ch] * s;
    let m = mean[ch];
    let mut sum_beta = 0.0f32;
    let mut sum_gamma = 0.0f32;
    let start = tile * rows;
    let end = clamp_max(start + rows, m_rows);
    for row in start..end {
        let idx = row * c + ch;
        let zv = z[idx];
        let g = through_relu6(gy[idx], zv * s + shift, relu6);
        dz[idx] = g * s;
        sum_beta += g;
        sum_gamma += g * (zv - m) * inv_std;
    }
    let base = tile * 2 * c + ch;
    partial[base] = sum_beta;
    partial[base + c] = sum_gamma;
}

/// Affine backward, last pass: the tiles' partials summed into the gradients of β and γ.
#[cube(launch_unchecked)]
pub fn affine_backward_finish(partial: &[f32], dgamma: &mut [f32], dbeta: &mut [f32], c: usize, tiles: usize) {
    let ch = ABSOLUTE_POS;
    if ch >= c {
        terminate!();
    }
    let mut sum_beta = 0.0f32;
    let mut sum_gamma = 0.0f32;
    for tile in 0..tiles {
        let base = tile * 2 * c + ch;
        sum_beta += partial[base];
        sum_gamma += partial[base + c];
    }
    dbeta[ch] = sum_beta;
    dgamma[ch] = sum_gamma;
}

/// The stem's patches: NCHW images `[N, 3, H, W]` → rows `[N·OH·OW, 27]` ordered (c, ky, kx)
/// like a flattened `[32, 3, 3, 3]` weight, for a 3x3 convolution with padding 1.
#[cube(launch_unchecked)]
pub fn stem_patches(
    x: &[f32],
    patches: &mut [f32],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    #[comptime] stride: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= patches.len() {
        terminate!();
    }
    let k = pos % 27;
    let pixel = pos / 27;
    let ox = pixel % ow;
    let oy = (pixel / ow) % oh;
    let b = pixel / (ow * oh);
    let ch = k / 9;
    let ky = (k / 3) % 3;
    let kx = k % 3;
    let py = oy * stride + ky;
    let px = ox * stride + kx;
    let mut v = 0.0f32;
    if py >= 1 && py <= h && px >= 1 && px <= wd {
        v = x[((b * 3 + ch) * h + py - 1) * wd + px - 1];
    }
    patches[pos] = v;
}

/// The images' gradient from the patches' (the stem's patches are differentiable when the
/// images require a gradient): every image value gathers the patch entries that copied it.
#[cube(launch_unchecked)]
pub fn stem_patches_backward(
    dpatches: &[f32],
    dx: &mut [f32],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    #[comptime] stride: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= dx.len() {
        terminate!();
    }
    let ix = pos % wd;
    let iy = (pos / wd) % h;
    let ch = (pos / (wd * h)) % 3;
    let b = pos / (wd * h * 3);
    let mut acc = 0.0f32;
    #[unroll]
    for ky in 0..3 {
        let ny = iy + 1;
        if ny >= ky {
            let sy = ny - ky;
            let oy = sy / stride;
            if oy * stride == sy && oy < oh {
                #[unroll]
                for kx in 0..3 {
                    let nx = ix + 1;
                    if nx >= kx {
                        let sx = nx - kx;
                        let ox = sx / stride;
                        if ox * stride == sx && ox < ow {
                            acc += dpatches[((b * oh + oy) * ow + ox) * 27 + ch * 9 + ky * 3 + kx];
                        }
                    }
                }
            }
        }
    }
    dx[pos] = acc;
}
