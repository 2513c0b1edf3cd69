//! MobileNetV2 on GPUs: hand-written CubeCL kernels for its hot layers as a burn backend
//! extension (forward, backward, fusion-aware) and the NHWC forward pass that uses them.

mod autodiff;
mod check;
mod dense_grad;
pub(crate) mod kernels;
mod ops;
pub(crate) mod path;

pub use check::check_kernels;
pub use kernels::AdamScalars;
pub use ops::{LayerSpec, MobileNetGrads, MobileNetOps};
pub use path::{enabled, set_enabled};

/// Storage buffers per shader stage graft's kernels bind at most (the depthwise backward's nine
/// tensors and CubeCL's metadata buffer). WebGPU guarantees 8; a device that allows fewer than
/// this runs burn's generic kernels.
pub const STORAGE_BUFFERS_NEEDED: u32 = 10;
#[cfg(test)]
mod tests;
