//! Which of cubek's matmul routines runs MobileNetV2's 1x1 convolutions fastest on this GPU
//! (natively: wgpu on Vulkan; Mesa lavapipe on a GPU-less box). Every 1x1 layer's shape at
//! batch 16, 224²: `[N·H·W, C_in] × [C_in, C_out]` with the weight read transposed, as the GPU
//! path does. Build without burn's fusion (the primitives must be plain cube tensors):
//! `cargo run --release -p graft-model --features gpu --example gpu_matmul`.

use burn::backend::Cube;
use burn::tensor::{Device, Distribution, Tensor};
use cubecl::prelude::*;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::launch_ref;
use cubek::matmul::multi_level::Strategy as Ml;
use cubek::matmul::strategy::Strategy;
use cubek::matmul::tiled::Strategy as Tiled;
use cubek::std::InputBinding;
use std::time::Instant;

/// (rows per image, C_in, C_out) of every 1x1 convolution at 224².
fn layers() -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let (mut c, mut side) = (32, 112);
    for (t, c_out, n, s) in settings {
        for i in 0..n {
            let hidden = c * t;
            if t != 1 {
                out.push((side * side, c, hidden));
            }
            if i == 0 {
                side /= s;
            }
            out.push((side * side, hidden, c_out));
            c = c_out;
        }
    }
    out.push((side * side, c, 1280));
    out
}

fn main() {
    let device = Device::wgpu(Default::default());
    let batch = 16;
    let f32_elem = f32::elem_type_native();
    let strategies: Vec<(&str, Strategy)> = vec![
        ("simple unit (default)", Ml::SimpleUnit(Default::default()).into()),
        ("double unit", Ml::DoubleUnit(Default::default()).into()),
        ("simple vecmat", Ml::SimpleVecMat(Default::default()).into()),
        ("double vecmat", Ml::DoubleVecMat(Default::default()).into()),
        ("naive", Ml::Naive.into()),
        ("tiled cpu gemm", Tiled::CpuGemm(Default::default()).into()),
    ];
    let shapes = layers();
    let flop: f64 = shapes.iter().map(|&(r, k, n)| 2.0 * (r * batch * k * n) as f64).sum();
    println!("{} layers, {:.2} GFLOP per batch of {batch}", shapes.len(), flop / 1e9);
    // The operands, made once: the timed loop launches matmuls only.
    let operands: Vec<_> = shapes
        .iter()
        .map(|&(rows, k, n)| {
            let x = Tensor::<2>::random([rows * batch, k], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &device).transpose();
            let out = Tensor::<2>::zeros([rows * batch, n], &device);
            let cube = |t: Tensor<2>| t.try_into_primitive::<Cube>().expect("a cube tensor (build without fusion)");
            (cube(x), cube(w), cube(out))
        })
        .collect();
    device.sync().expect("sync");
    for (name, strategy) in &strategies {
        let mut best = f64::MAX;
        let mut failed = None;
        for round in 0..3 {
            let t0 = Instant::now();
            for (x, w, o) in &operands {
                let client = x.client.clone();
                let mut dtypes =
                    MatmulElems::from_globals(&MatmulGlobalElems { lhs: f32_elem, rhs: f32_elem, out: f32_elem });
                let lhs = InputBinding::new(x.clone().binding(), f32_elem);
                let rhs = InputBinding::new(w.clone().binding(), f32_elem);
                if let Err(e) = launch_ref(strategy, &client, lhs, rhs, o.clone().binding(), &mut dtypes) {
                    failed = Some(format!("{:?}: {e:?}", x.meta.shape()));
                    break;
                }
            }
            device.sync().expect("sync");
            if round > 0 {
                best = best.min(t0.elapsed().as_secs_f64());
            }
            if failed.is_some() {
                break;
            }
        }
        match failed {
            Some(e) => println!("{name:<24} failed: {e}"),
            None => println!("{name:<24} {:8.1} ms per batch  {:6.1} GFLOP/s", best * 1e3, flop / best / 1e9),
        }
    }
}
