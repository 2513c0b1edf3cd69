//! The two gradients of the 1×1 convolutions' matmul (`y = x · wᵀ` over `[M, K]` rows), as
//! register-tiled kernels; the forward stays burn's matmul.
//!
//! - `dense_accumulate`, the input gradient `dx = dz · w`: each thread keeps `ROWS` rows × one
//!   or two channel vectors of the output in registers while it walks the (short) reduction
//!   over the output channels, so each load feeds several multiply-adds.
//! - `dense_weight_grad`, `dw = dzᵀ · x`: the reduction runs over every pixel (tens of
//!   thousands) into a small output (`C_out × C_in`), which a plain matmul spreads over few
//!   threads. Here a workgroup per output block splits the pixels among its threads and adds
//!   their sums in shared memory: one dispatch, every GPU core busy.
//!
//! Measured on lavapipe (`gpu::tests::matmul_speed`, batch 2 at 224²): burn's matmul took
//! 2.5–5× as long for both gradients of the early, many-pixel layers; the forward was no faster
//! with a kernel of this kind (see README).

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Shape;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::ops::{empty, flat, grid};

/// Rows of the output each thread keeps in registers.
const ROWS: usize = 4;

/// `c[i, jv] = Σ_p a[i, p] · b[p, jv]`: `a` is `[I, P]`, `b` `[P, J]` in `N`-lane vectors,
/// `c` `[I, J]`. One thread per `ROWS` rows × `cols` channel vectors.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn dense_accumulate<N: Size>(
    a: &[f32],
    b: &[Vector<f32, N>],
    c: &mut [Vector<f32, N>],
    i_rows: usize,
    p_len: usize,
    jvs: usize,
    tiles: usize,
    groups: usize,
    #[comptime] cols: usize,
) {
    let id = ABSOLUTE_POS;
    if id >= tiles * groups {
        terminate!();
    }
    let jv0 = (id % groups) * cols;
    let first = (id / groups) * ROWS;
    let last = i_rows - 1;
    let mut acc = Array::<Vector<f32, N>>::new(comptime!(ROWS * cols));
    #[unroll]
    for q in 0..ROWS * cols {
        acc[q] = Vector::new(0.0f32);
    }
    // Rows past the end read the last row again (their sums are never written): no branch in
    // the loop.
    for p in 0..p_len {
        let mut bs = Array::<Vector<f32, N>>::new(cols);
        #[unroll]
        for q in 0..cols {
            bs[q] = b[p * jvs + jv0 + q];
        }
        #[unroll]
        for r in 0..ROWS {
            let av = Vector::<f32, N>::new(a[clamp_max(first + r, last) * p_len + p]);
            #[unroll]
            for q in 0..cols {
                acc[r * cols + q] += av * bs[q];
            }
        }
    }
    #[unroll]
    for r in 0..ROWS {
        if first + r < i_rows {
            #[unroll]
            for q in 0..cols {
                c[(first + r) * jvs + jv0 + q] = acc[r * cols + q];
            }
        }
    }
}

/// `dw[j, kv] = Σ_m g[m, j] · x[m, kv]`: `g` is `[M, J]`, `x` `[M, K]` in `N`-lane vectors,
/// `dw` `[J, K]`. One workgroup of `slices` threads per block of `ROWS` rows (`y`) × `cols` channel
/// vectors (`x`): thread `u` sums pixels `u, u + slices, …` in registers, then the workgroup adds its
/// threads' sums in shared memory, so the long reduction over every pixel keeps a GPU busy in a
/// single dispatch.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn dense_weight_grad<N: Size>(
    g: &[f32],
    x: &[Vector<f32, N>],
    dw: &mut [Vector<f32, N>],
    j_rows: usize,
    m_len: usize,
    kvs: usize,
    #[comptime] cols: usize,
    #[comptime] slices: usize,
) {
    let first = CUBE_POS_Y as usize * ROWS;
    let jv0 = CUBE_POS_X as usize * cols;
    let u = UNIT_POS as usize;
    let last = j_rows - 1;
    let mut acc = Array::<Vector<f32, N>>::new(comptime!(ROWS * cols));
    #[unroll]
    for q in 0..ROWS * cols {
        acc[q] = Vector::new(0.0f32);
    }
    let steps = (m_len + slices - 1 - u) / slices;
    for step in 0..steps {
        let p = u + step * slices;
        let mut xs = Array::<Vector<f32, N>>::new(cols);
        #[unroll]
        for q in 0..cols {
            xs[q] = x[p * kvs + jv0 + q];
        }
        let gp = p * j_rows;
        #[unroll]
        for r in 0..ROWS {
            let gv = Vector::<f32, N>::new(g[gp + clamp_max(first + r, last)]);
            #[unroll]
            for q in 0..cols {
                acc[r * cols + q] += gv * xs[q];
            }
        }
    }
    let mut shared = Shared::<[Vector<f32, N>]>::new_slice(comptime!(slices * ROWS * cols));
    #[unroll]
    for q in 0..ROWS * cols {
        shared[u * comptime!(ROWS * cols) + q] = acc[q];
    }
    sync_cube();
    if u < comptime!(ROWS * cols) {
        let row = first + u / cols;
        if row < j_rows {
            let mut sum = shared[u];
            for v in 1..slices {
                sum += shared[v * comptime!(ROWS * cols) + u];
            }
            dw[row * kvs + jv0 + u % cols] = sum;
        }
    }
}

// ---- launches -------------------------------------------------------------------------------

static OWN: AtomicBool = AtomicBool::new(true);

/// Whether the 1×1 convolutions' gradients use these kernels (else burn's matmul: the
/// comparison `matmul_speed` measures).
pub fn own() -> bool {
    OWN.load(Ordering::Relaxed)
}

#[cfg_attr(not(test), allow(dead_code))]
pub fn set_own(on: bool) {
    OWN.store(on, Ordering::Relaxed);
}

/// Lanes per vector along a row of `n` values: 4 where it divides.
fn lanes(n: usize) -> usize {
    if n.is_multiple_of(4) {
        4
    } else {
        1
    }
}

/// Channel vectors per thread along the output's rows: two where they pair up.
fn cols_for(jvs: usize) -> usize {
    if jvs.is_multiple_of(2) {
        2
    } else {
        1
    }
}

/// `a · b`: `a` `[I, P]`, `b` `[P, J]` → `[I, J]`.
fn accumulate(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    let (i_rows, p_len) = (a.meta.shape()[0], a.meta.shape()[1]);
    let j = b.meta.shape()[1];
    let vs = lanes(j);
    let jvs = j / vs;
    let cols = cols_for(jvs);
    let groups = jvs / cols;
    let tiles = i_rows.div_ceil(ROWS);
    let out = empty(&b, Shape::new([i_rows, j]));
    let (count, dim) = grid(&out, tiles * groups);
    #[allow(unsafe_code)]
    // SAFETY: threads past `tiles × groups` return first; rows past `I` are clamped for reading
    // and never written; `a` and `b` are contiguous `[I, P]` and `[P, J]`.
    unsafe {
        dense_accumulate::launch_unchecked(
            &out.client.clone(),
            count,
            dim,
            vs,
            flat(a),
            flat(b),
            out.clone().into_buffer_arg(),
            i_rows,
            p_len,
            jvs,
            tiles,
            groups,
            cols,
        );
    }
    out
}

/// `dz · w`: `dz` `[M, J]`, `w` `[J, K]` → `[M, K]`.
pub fn input_grad(grad: CubeTensor, w: CubeTensor) -> CubeTensor {
    accumulate(grad, w)
}

/// Threads of a weight-gradient workgroup, each summing every `SLICES`-th pixel.
const SLICES: usize = 64;

/// Whether a weight gradient over `pixels` is long enough for [`weight_grad`]: over a few
/// hundred pixels (the last layers) burn's matmul was as fast or faster in `matmul_speed`.
pub fn long_reduction(pixels: usize) -> bool {
    pixels >= 16 * SLICES
}

/// `dzᵀ · x`: `dz` `[M, J]`, `x` `[M, K]` → `[J, K]`.
pub fn weight_grad(grad: CubeTensor, x: CubeTensor) -> CubeTensor {
    let (m, j, k) = (grad.meta.shape()[0], grad.meta.shape()[1], x.meta.shape()[1]);
    let vs = lanes(k);
    let kvs = k / vs;
    let cols = cols_for(kvs);
    let groups = kvs / cols;
    let count = |n: usize| u32::try_from(n).expect("a launch dimension fits a u32");
    debug_assert!(SLICES >= ROWS * cols, "the last step sums one output per thread");
    let out = empty(&x, Shape::new([j, k]));
    #[allow(unsafe_code)]
    // SAFETY: one workgroup per block (rows past `J` are clamped for reading and never
    // written); each thread reads pixels below `M` only; `grad` and `x` are contiguous.
    unsafe {
        dense_weight_grad::launch_unchecked(
            &out.client.clone(),
            CubeCount::new_2d(count(groups), count(j.div_ceil(ROWS))),
            CubeDim::new_1d(count(SLICES)),
            vs,
            flat(grad),
            flat(x),
            out.clone().into_buffer_arg(),
            j,
            m,
            kvs,
            cols,
            SLICES,
        );
    }
    out
}
