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
