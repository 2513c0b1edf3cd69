//! The kernel checks (`check.rs`) natively: wgpu on Vulkan (Mesa lavapipe on a GPU-less
//! machine) against flex. The page runs the same checks on WebGPU (browser tests).

use burn::tensor::Device;

use super::check::check_kernels;
use crate::kernel_check::KernelCheck;

fn run_checks() -> Vec<KernelCheck> {
    futures::executor::block_on(check_kernels(&Device::wgpu(Default::default()))).expect("the checks ran")
}

#[test]
fn every_kernel_matches_its_definition_forward_and_gradients() {
    let checks = run_checks();
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every kernel family is covered, each forward and backward where it has one.
    for (kernel, quantity) in [
        ("depthwise 3×3 + BatchNorm", "dw"),
        ("depthwise 3×3 folded", "output"),
        ("BatchNorm/ReLU6/residual (affine)", "dresidual"),
        ("stem patches + matmul + BatchNorm", "dx"),
        ("1×1 conv (matmul)", "dw"),
        ("AdamW", "parameters"),
        ("AdamW", "parameters b (pair)"),
    ] {
        assert!(checks.iter().any(|c| c.kernel == kernel && c.quantity == quantity), "{kernel} {quantity} checked");
    }
}

/// Times the gradients of the 1×1 convolutions' matmul at MobileNetV2's shapes (batch 2 at
/// 224²), input then weight, with graft's kernels and with burn's matmul, alternating; each
/// figure is the best of three and includes reading the result back. A measurement, not a
/// check: `cargo test --profile ci --workspace --exclude graft -- --ignored matmul_speed --nocapture`.
#[test]
#[ignore = "a measurement: run it by name"]
fn matmul_speed() {
    use burn::backend::Dispatch;
    use burn::tensor::{Tensor, TensorData};
    use std::time::Instant;

    use super::dense_grad::set_own;
    use super::ops::MobileNetGrads;

    let device = Device::wgpu(Default::default());
    // The last value of a result: reading it waits for the kernel.
    let read = |t: burn::backend::tensor::FloatTensor<Dispatch>| -> f32 {
        let data = Tensor::<2>::from_dispatch(t).flatten::<1>(0, 1).into_data();
        *data.try_to_vec::<f32>().expect("f32").last().expect("a value")
    };
    // (pixels, in, out) of a few MobileNetV2 1×1 layers at batch 2.
    let shapes = [
        (25_088, 16, 96),
        (6_272, 24, 144),
        (6_272, 144, 24),
        (1_568, 192, 32),
        (392, 384, 64),
        (98, 960, 160),
        (98, 320, 1280),
    ];
    for (m, k, j) in shapes {
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; m * k], [m, k]), &device);
        let w = Tensor::<4>::from_data(TensorData::new(vec![0.25f32; j * k], [j, k, 1, 1]), &device);
        let g = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; m * j], [m, j]), &device);
        let mut line = format!("[{m}, {k}] × [{j}, {k}]ᵀ:");
        for own in [true, false, true, false] {
            set_own(own);
            let mut ms = Vec::new();
            for op in 1..3 {
                let mut best = f64::MAX;
                for _ in 0..3 {
                    let t0 = Instant::now();
                    let (v, expect) = match op {
                        1 => (
                            read(Dispatch::dense_input_grad(g.clone().into_dispatch(), w.clone().into_dispatch())),
                            0.25 * j as f32,
                        ),
                        _ => (
                            read(Dispatch::dense_weight_grad(
                                g.clone().into_dispatch(),
                                x.clone().into_dispatch(),
                                [j, k, 1, 1].into(),
                            )),
                            0.5 * m as f32,
                        ),
                    };
                    best = best.min(t0.elapsed().as_secs_f64() * 1e3);
                    assert!((v - expect).abs() <= 1e-3 * expect, "op {op}: {v} vs {expect}");
                }
                ms.push(format!("{best:.1}"));
            }
            line += &format!(" {} {} ms;", if own { "graft" } else { "burn" }, ms.join("/"));
        }
        set_own(true);
        println!("{line}");
    }
}
