//! CubeCL kernels for MobileNetV2's hot layers on GPUs (WebGPU, Vulkan, …), in NHWC with
//! `N` channels per vector (4 wherever the channel count allows: every MobileNetV2 layer).
//!
//! Every layer is `y = act(s·u + b)` where `u` is the convolution and, for a trainable layer,
//! `s = γ/√(σ²+ε)`, `b = β − μ·s` (BatchNorm with its running statistics) computed in the kernel
//! from the four BatchNorm vectors, so no separate dispatches prepare them; a folded
//! (inference) layer passes its bias as `β` and `s = 1`.
//!
//! Threads own one channel vector of a whole row (or a tile of rows) and loop along it, so the
//! index arithmetic — integer divisions, which GPUs (and CPU-emulated ones like lavapipe) do
//! slowly — happens once per thread, not per element; the depthwise kernels slide a 3×3 window
//! along the row, loading each input once per output column step.

use cubecl::prelude::*;

/// Per-channel scale and shift of `y = s·u + b` (see the module docs).
#[cube]
fn scale_shift<N: Size>(
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    mean: &[Vector<f32, N>],
    var: &[Vector<f32, N>],
    cv: usize,
    eps: f32,
    #[comptime] norm: bool,
) -> (Vector<f32, N>, Vector<f32, N>) {
    if norm {
        let s = gamma[cv] / (var[cv] + Vector::new(eps)).sqrt();
        (s, beta[cv] - mean[cv] * s)
    } else {
        (Vector::new(1.0f32), beta[cv])
    }
}

#[cube]
fn activate<N: Size>(v: Vector<f32, N>, #[comptime] relu6: bool) -> Vector<f32, N> {
    if relu6 {
        clamp_nan(v, Vector::new(0.0f32), Vector::new(6.0f32))
    } else {
        v
    }
}

/// The upstream gradient where ReLU6 did not clip `v`, zero where it did (PyTorch's hardtanh
/// does the same).
#[cube]
fn through_relu6<N: Size>(g: Vector<f32, N>, v: Vector<f32, N>, #[comptime] relu6: bool) -> Vector<f32, N> {
    if relu6 {
        let zero = Vector::new(0.0f32);
        let inside = v.greater_than(&zero).vec_and(v.less_than(&Vector::new(6.0f32)));
        select_many(inside, g, zero)
    } else {
        g
    }
}

/// The nine taps of channel vector `cv`, from a `[C, 3, 3]` weight.
#[cube]
fn taps<N: Size>(w: &[f32], cv: usize) -> Array<Vector<f32, N>> {
    let mut taps = Array::<Vector<f32, N>>::new(9usize);
    #[unroll]
    for t in 0..9 {
        let mut v = Vector::<f32, N>::empty();
        #[unroll]
        for i in 0..N::value() {
            v.insert(i, w[(cv * N::value() + i) * 9 + t]);
        }
        taps[t] = v;
    }
    taps
}

/// Input vector at padded position (`py`, `px`) of image plane `plane` (= b·H); zero in the
/// padding.
#[cube]
fn padded<N: Size>(
    x: &[Vector<f32, N>],
    plane: usize,
    py: usize,
    px: usize,
    h: usize,
    w: usize,
    cvs: usize,
    cv: usize,
) -> Vector<f32, N> {
    let mut v = Vector::new(0.0f32);
    if py >= 1 && py <= h && px >= 1 && px <= w {
        v = x[((plane + py - 1) * w + px - 1) * cvs + cv];
    }
    v
}

/// The 3×3 window of one output position, as three columns (left, middle, right) of three
/// rows, slid along an output row.
#[derive(CubeType)]
struct Window<N: Size> {
    a: Array<Vector<f32, N>>,
    b: Array<Vector<f32, N>>,
    c: Array<Vector<f32, N>>,
}

#[cube]
fn load_column<N: Size>(
    x: &[Vector<f32, N>],
    col: &mut Array<Vector<f32, N>>,
    plane: usize,
    py0: usize,
    px: usize,
    h: usize,
    w: usize,
    cvs: usize,
    cv: usize,
) {
    #[unroll]
    for ky in 0..3 {
        col[ky] = padded(x, plane, py0 + ky, px, h, w, cvs, cv);
    }
}

#[cube]
fn copy_column<N: Size>(from: &Array<Vector<f32, N>>, to: &mut Array<Vector<f32, N>>) {
    #[unroll]
    for ky in 0..3 {
        to[ky] = from[ky];
    }
}

#[cube]
impl<N: Size> Window<N> {
    /// The window of output column 0 of the row starting at padded row `py0`.
    fn start(x: &[Vector<f32, N>], plane: usize, py0: usize, h: usize, w: usize, cvs: usize, cv: usize) -> Window<N> {
        let mut window = Window::<N> { a: Array::new(3usize), b: Array::new(3usize), c: Array::new(3usize) };
        load_column(x, &mut window.a, plane, py0, 0, h, w, cvs, cv);
        load_column(x, &mut window.b, plane, py0, 1, h, w, cvs, cv);
        load_column(x, &mut window.c, plane, py0, 2, h, w, cvs, cv);
        window
    }

    /// Moves to output column `ox` (> 0): stride 1 reuses two columns, stride 2 one.
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &mut self,
        x: &[Vector<f32, N>],
        ox: usize,
        plane: usize,
        py0: usize,
        h: usize,
        w: usize,
        cvs: usize,
        cv: usize,
        #[comptime] stride: usize,
    ) {
        if stride == 1 {
            copy_column(&self.b, &mut self.a);
            copy_column(&self.c, &mut self.b);
            load_column(x, &mut self.c, plane, py0, ox + 2, h, w, cvs, cv);
        } else {
            copy_column(&self.c, &mut self.a);
            load_column(x, &mut self.b, plane, py0, ox * 2 + 1, h, w, cvs, cv);
            load_column(x, &mut self.c, plane, py0, ox * 2 + 2, h, w, cvs, cv);
        }
    }

    /// Tap `ky·3 + kx`'s input.
    fn at(&self, #[comptime] t: usize) -> Vector<f32, N> {
        let ky = comptime!(t / 3);
        let kx = comptime!(t % 3);
        if kx == 0 {
            self.a[ky]
        } else if kx == 1 {
            self.b[ky]
        } else {
            self.c[ky]
        }
    }

    fn conv(&self, taps: &Array<Vector<f32, N>>) -> Vector<f32, N> {
        let mut u = Vector::new(0.0f32);
        #[unroll]
        for t in 0..9 {
            u += self.at(t) * taps[t];
        }
        u
    }
}

/// Depthwise 3x3 forward: `y[b,oy,ox,c] = act(s·Σ w·x + b)`, one thread per output row and
/// channel vector.
#[cube(launch_unchecked)]
pub fn depthwise_forward<N: Size>(
    x: &[Vector<f32, N>],
    w: &[f32],
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    mean: &[Vector<f32, N>],
    var: &[Vector<f32, N>],
    y: &mut [Vector<f32, N>],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    cvs: usize,
    rows: usize,
    eps: f32,
    #[comptime] stride: usize,
    #[comptime] norm: bool,
    #[comptime] relu6: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= rows * cvs {
        terminate!();
    }
    let cv = id % cvs;
    let row = id / cvs;
    let oy = row % oh;
    let plane = (row / oh) * h;
    let py0 = oy * stride;
    let (s, shift) = scale_shift(gamma, beta, mean, var, cv, eps, norm);
    let taps = taps::<N>(w, cv);
    let mut window = Window::<N>::start(x, plane, py0, h, wd, cvs, cv);
    let out = row * ow * cvs + cv;
    for ox in 0..ow {
        if ox > 0 {
            window.advance(x, ox, plane, py0, h, wd, cvs, cv, stride);
        }
        y[out + ox * cvs] = activate(window.conv(&taps) * s + shift, relu6);
    }
}

/// Sums a depthwise backward row keeps per channel vector: Σg' (β), Σg'·x̂ (γ), then Σ gs·x per
/// tap (w).
const SUMS: usize = 11;

/// Depthwise backward, first pass, one thread per output row and channel vector: the upstream
/// gradient through ReLU6 and the scale (`gs = s·g'`, kept for the input gradient) and the
/// row's partial sums, `partial` `[rows, 11, C]`.
#[cube(launch_unchecked)]
pub fn depthwise_backward_prepare<N: Size>(
    x: &[Vector<f32, N>],
    w: &[f32],
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    mean: &[Vector<f32, N>],
    var: &[Vector<f32, N>],
    gy: &[Vector<f32, N>],
    gs: &mut [Vector<f32, N>],
    partial: &mut [Vector<f32, N>],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    cvs: usize,
    rows: usize,
    eps: f32,
    #[comptime] stride: usize,
    #[comptime] relu6: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= rows * cvs {
        terminate!();
    }
    let cv = id % cvs;
    let row = id / cvs;
    let oy = row % oh;
    let plane = (row / oh) * h;
    let py0 = oy * stride;
    let inv_std: Vector<f32, N> = Vector::new(1.0f32) / (var[cv] + Vector::new(eps)).sqrt();
    let s = gamma[cv] * inv_std;
    let shift = beta[cv] - mean[cv] * s;
    let m = mean[cv];
    let taps = taps::<N>(w, cv);
    let mut sums = Array::<Vector<f32, N>>::new(SUMS);
    #[unroll]
    for k in 0..SUMS {
        sums[k] = Vector::new(0.0f32);
    }
    let mut window = Window::<N>::start(x, plane, py0, h, wd, cvs, cv);
    let out = row * ow * cvs + cv;
    for ox in 0..ow {
        if ox > 0 {
            window.advance(x, ox, plane, py0, h, wd, cvs, cv, stride);
        }
        let u: Vector<f32, N> = window.conv(&taps);
        let idx = out + ox * cvs;
        let g: Vector<f32, N> = through_relu6(gy[idx], u * s + shift, relu6);
        let scaled: Vector<f32, N> = g * s;
        gs[idx] = scaled;
        sums[0] += g;
        sums[1] += g * (u - m) * inv_std;
        #[unroll]
        for t in 0..9 {
            let x_t: Vector<f32, N> = window.at(t);
            sums[t + 2usize] += scaled * x_t;
        }
    }
    let base = row * SUMS * cvs + cv;
    #[unroll]
    for k in 0..SUMS {
        partial[base + k * cvs] = sums[k];
    }
}

/// Depthwise backward, second pass, in one launch for two independent jobs (one launch fewer
/// per depthwise layer): threads below `rows · cvs` write the input gradient
/// ([`depthwise_input_row`]), the next `cvs` threads add the rows' partial sums into the
/// gradients of β, γ and the taps ([`depthwise_finish_channel`]).
#[cube(launch_unchecked)]
pub fn depthwise_backward_input_finish<N: Size>(
    gs: &[Vector<f32, N>],
    w: &[f32],
    dx: &mut [Vector<f32, N>],
    partial: &[Vector<f32, N>],
    dgamma: &mut [Vector<f32, N>],
    dbeta: &mut [Vector<f32, N>],
    dw: &mut [f32],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    cvs: usize,
    input_rows: usize,
    output_rows: usize,
    #[comptime] stride: usize,
) {
    let id = ABSOLUTE_POS;
    let input_threads = input_rows * cvs;
    if id < input_threads {
        depthwise_input_row::<N>(gs, w, dx, id, h, wd, oh, ow, cvs, stride);
    } else if id < input_threads + cvs {
        depthwise_finish_channel::<N>(partial, dgamma, dbeta, dw, id - input_threads, cvs, output_rows);
    }
}

/// The input gradient of one input row and channel vector (thread `id`): the transposed
/// convolution of `gs`.
#[cube]
fn depthwise_input_row<N: Size>(
    gs: &[Vector<f32, N>],
    w: &[f32],
    dx: &mut [Vector<f32, N>],
    id: usize,
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    cvs: usize,
    #[comptime] stride: usize,
) {
    let cv = id % cvs;
    let row = id / cvs;
    let iy = row % h;
    let b = row / h;
    let taps = taps::<N>(w, cv);
    let out = row * wd * cvs + cv;
    for ix in 0..wd {
        let mut acc = Vector::new(0.0f32);
        // Output `o` reads padded position `o·stride + k`, i.e. input `o·stride + k − 1`.
        #[unroll]
        for ky in 0..3 {
            let ny = iy + 1;
            if ny >= ky {
                let sy = ny - ky;
                let oy = sy / stride;
                if oy * stride == sy && oy < oh {
                    let grow = (b * oh + oy) * ow;
                    #[unroll]
                    for kx in 0..3 {
                        let nx = ix + 1;
                        if nx >= kx {
                            let sx = nx - kx;
                            let ox = sx / stride;
                            if ox * stride == sx && ox < ow {
                                acc += gs[(grow + ox) * cvs + cv] * taps[ky * 3 + kx];
                            }
                        }
                    }
                }
            }
        }
        dx[out + ix * cvs] = acc;
    }
}

/// The output rows' partial sums of channel vector `cv` added into the gradients of β, γ and
/// its nine taps.
#[cube]
fn depthwise_finish_channel<N: Size>(
    partial: &[Vector<f32, N>],
    dgamma: &mut [Vector<f32, N>],
    dbeta: &mut [Vector<f32, N>],
    dw: &mut [f32],
    cv: usize,
    cvs: usize,
    rows: usize,
) {
    let mut sums = Array::<Vector<f32, N>>::new(SUMS);
    #[unroll]
    for k in 0..SUMS {
        sums[k] = Vector::new(0.0f32);
    }
    for row in 0..rows {
        let base = row * SUMS * cvs + cv;
        #[unroll]
        for k in 0..SUMS {
            sums[k] += partial[base + k * cvs];
        }
    }
    dbeta[cv] = sums[0];
    dgamma[cv] = sums[1];
    #[unroll]
    for t in 0..9 {
        let v: Vector<f32, N> = sums[2 + t];
        #[unroll]
        for i in 0..N::value() {
            dw[(cv * N::value() + i) * 9 + t] = v.extract(i);
        }
    }
}

/// The per-channel affine map and activation after a 1x1 convolution (a matmul over `[M, C]`
/// rows), optionally plus the block's residual: `y = act(s·z + b) (+ r)`. One thread per tile
/// of `tile` rows and channel vector.
#[cube(launch_unchecked)]
pub fn affine_forward<N: Size>(
    z: &[Vector<f32, N>],
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    mean: &[Vector<f32, N>],
    var: &[Vector<f32, N>],
    residual: &[Vector<f32, N>],
    y: &mut [Vector<f32, N>],
    cvs: usize,
    m_rows: usize,
    tile: usize,
    tiles: usize,
    eps: f32,
    #[comptime] norm: bool,
    #[comptime] relu6: bool,
    #[comptime] add_residual: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= tiles * cvs {
        terminate!();
    }
    let cv = id % cvs;
    let start = (id / cvs) * tile;
    let end = clamp_max(start + tile, m_rows);
    let (s, shift) = scale_shift(gamma, beta, mean, var, cv, eps, norm);
    for row in start..end {
        let idx = row * cvs + cv;
        let mut v = activate(z[idx] * s + shift, relu6);
        if add_residual {
            v += residual[idx];
        }
        y[idx] = v;
    }
}

/// Affine backward, first pass: `dz = s·g'` and each tile's partial sums Σg' (β) and Σg'·x̂
/// (γ); `partial` is `[tiles, 2, C]`.
#[cube(launch_unchecked)]
pub fn affine_backward_prepare<N: Size>(
    z: &[Vector<f32, N>],
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    mean: &[Vector<f32, N>],
    var: &[Vector<f32, N>],
    gy: &[Vector<f32, N>],
    dz: &mut [Vector<f32, N>],
    partial: &mut [Vector<f32, N>],
    cvs: usize,
    m_rows: usize,
    tile: usize,
    tiles: usize,
    eps: f32,
    #[comptime] relu6: bool,
) {
    let id = ABSOLUTE_POS;
    if id >= tiles * cvs {
        terminate!();
    }
    let cv = id % cvs;
    let t = id / cvs;
    let inv_std = Vector::new(1.0f32) / (var[cv] + Vector::new(eps)).sqrt();
    let s = gamma[cv] * inv_std;
    let shift = beta[cv] - mean[cv] * s;
    let m = mean[cv];
    let mut sum_beta = Vector::new(0.0f32);
    let mut sum_gamma = Vector::new(0.0f32);
    let start = t * tile;
    let end = clamp_max(start + tile, m_rows);
    for row in start..end {
        let idx = row * cvs + cv;
        let zv = z[idx];
        let g = through_relu6(gy[idx], zv * s + shift, relu6);
        dz[idx] = g * s;
        sum_beta += g;
        sum_gamma += g * (zv - m) * inv_std;
    }
    let base = t * 2 * cvs + cv;
    partial[base] = sum_beta;
    partial[base + cvs] = sum_gamma;
}

/// Affine backward, last pass: the tiles' partials summed into the gradients of β and γ.
#[cube(launch_unchecked)]
pub fn affine_backward_finish<N: Size>(
    partial: &[Vector<f32, N>],
    dgamma: &mut [Vector<f32, N>],
    dbeta: &mut [Vector<f32, N>],
    cvs: usize,
    tiles: usize,
) {
    let cv = ABSOLUTE_POS;
    if cv >= cvs {
        terminate!();
    }
    let mut sum_beta = Vector::new(0.0f32);
    let mut sum_gamma = Vector::new(0.0f32);
    for t in 0..tiles {
        let base = t * 2 * cvs + cv;
        sum_beta += partial[base];
        sum_gamma += partial[base + cvs];
    }
    dbeta[cv] = sum_beta;
    dgamma[cv] = sum_gamma;
}

/// The stem's patches: NCHW images `[N, 3, H, W]` → rows `[N·OH·OW, 27]` ordered (c, ky, kx)
/// like a flattened `[32, 3, 3, 3]` weight, for a 3x3 convolution with padding 1. One thread
/// per output pixel.
#[cube(launch_unchecked)]
pub fn stem_patches(
    x: &[f32],
    patches: &mut [f32],
    h: usize,
    wd: usize,
    oh: usize,
    ow: usize,
    pixels: usize,
    #[comptime] stride: usize,
) {
    let pixel = ABSOLUTE_POS;
    if pixel >= pixels {
        terminate!();
    }
    let ox = pixel % ow;
    let oy = (pixel / ow) % oh;
    let b = pixel / (ow * oh);
    #[unroll]
    for ch in 0..3 {
        let plane = (b * 3 + ch) * h;
        #[unroll]
        for ky in 0..3 {
            let py = oy * stride + ky;
            #[unroll]
            for kx in 0..3 {
                let px = ox * stride + kx;
                let mut v = 0.0f32;
                if py >= 1 && py <= h && px >= 1 && px <= wd {
                    v = x[(plane + py - 1) * wd + px - 1];
                }
                patches[pixel * 27 + ch * 9 + ky * 3 + kx] = v;
            }
        }
    }
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

/// One AdamW step over a parameter, its gradient and its two moments, in one pass (burn's
/// AdamW is a dozen element-wise kernels per parameter). `first`: the moments start at zero
/// (their slots are then not read).
#[cube(launch_unchecked)]
pub fn adamw_step<N: Size>(
    param: &[Vector<f32, N>],
    grad: &[Vector<f32, N>],
    m_in: &[Vector<f32, N>],
    v_in: &[Vector<f32, N>],
    param_out: &mut [Vector<f32, N>],
    m_out: &mut [Vector<f32, N>],
    v_out: &mut [Vector<f32, N>],
    len: usize,
    scalars: AdamScalars,
    #[comptime] first: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= len {
        terminate!();
    }
    let g = grad[i];
    let mut m = g * Vector::new(1.0f32 - scalars.beta_1);
    let mut v = g * g * Vector::new(1.0f32 - scalars.beta_2);
    if !first {
        m += m_in[i] * Vector::new(scalars.beta_1);
        v += v_in[i] * Vector::new(scalars.beta_2);
    }
    let m_hat = m / Vector::new(scalars.bias_1);
    let v_hat = v / Vector::new(scalars.bias_2);
    let delta = m_hat / (v_hat.sqrt() + Vector::new(scalars.epsilon));
    param_out[i] = param[i] * Vector::new(scalars.decay) - delta * Vector::new(scalars.lr);
    m_out[i] = m;
    v_out[i] = v;
}

/// Two parameters' AdamW steps in one launch, each updated in place: threads below `len_a`
/// step parameter `a`, the next `len_b` step `b`, each at its own rate. `param`, `m`, `v` are
/// read and written, four bindings per parameter instead of seven, so two parameters and
/// CubeCL's metadata take 9, within the 10 graft's kernels already need
/// (`STORAGE_BUFFERS_NEEDED`). The same arithmetic, in the same order, as [`adamw_step`].
#[cube(launch_unchecked)]
pub fn adamw_pair_in_place<N: Size>(
    param_a: &mut [Vector<f32, N>],
    grad_a: &[Vector<f32, N>],
    m_a: &mut [Vector<f32, N>],
    v_a: &mut [Vector<f32, N>],
    param_b: &mut [Vector<f32, N>],
    grad_b: &[Vector<f32, N>],
    m_b: &mut [Vector<f32, N>],
    v_b: &mut [Vector<f32, N>],
    len_a: usize,
    len_b: usize,
    scalars_a: AdamScalars,
    scalars_b: AdamScalars,
    #[comptime] first: bool,
) {
    let i = ABSOLUTE_POS;
    if i < len_a {
        adamw_in_place::<N>(param_a, grad_a, m_a, v_a, i, scalars_a, first);
    } else if i < len_a + len_b {
        adamw_in_place::<N>(param_b, grad_b, m_b, v_b, i - len_a, scalars_b, first);
    }
}

#[cube]
fn adamw_in_place<N: Size>(
    param: &mut [Vector<f32, N>],
    grad: &[Vector<f32, N>],
    m_io: &mut [Vector<f32, N>],
    v_io: &mut [Vector<f32, N>],
    i: usize,
    scalars: AdamScalars,
    #[comptime] first: bool,
) {
    let g = grad[i];
    let mut m = g * Vector::new(1.0f32 - scalars.beta_1);
    let mut v = g * g * Vector::new(1.0f32 - scalars.beta_2);
    if !first {
        m += m_io[i] * Vector::new(scalars.beta_1);
        v += v_io[i] * Vector::new(scalars.beta_2);
    }
    let m_hat = m / Vector::new(scalars.bias_1);
    let v_hat = v / Vector::new(scalars.bias_2);
    let delta = m_hat / (v_hat.sqrt() + Vector::new(scalars.epsilon));
    param[i] = param[i] * Vector::new(scalars.decay) - delta * Vector::new(scalars.lr);
    m_io[i] = m;
    v_io[i] = v;
}

/// The scalars of one AdamW step: `bias_k = 1 − β_kᵗ`, `decay = 1 − lr·weight_decay`.
#[derive(CubeLaunch, CubeType, Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub bias_1: f32,
    pub bias_2: f32,
    pub decay: f32,
}
