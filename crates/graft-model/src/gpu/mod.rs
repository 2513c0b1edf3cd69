//! MobileNetV2 on GPUs: hand-written CubeCL kernels for its hot layers as a burn backend
//! extension (forward, backward, fusion-aware) and the NHWC forward pass that uses them.

mod autodiff;
pub(crate) mod kernels;
mod ops;
pub(crate) mod path;

pub use kernels::AdamScalars;
pub use ops::{LayerSpec, MobileNetGrads, MobileNetOps};
pub use path::{enabled, set_enabled};
#[cfg(test)]
mod tests;
