//! Where a model's initial tensors come from: a real checkpoint ([`WeightMap`]) or a seeded
//! random initialisation ([`RandomWeights`]) with the same names and shapes, so the trainer's
//! mechanics can be tested in seconds without the 14 MB checkpoint.

use std::borrow::Cow;

use burn::tensor::{Device, Tensor, TensorData};
use graft_data::SeededRng;

use crate::arch::Architecture;
use crate::weights::{WeightError, WeightMap};

pub trait WeightSource {
    /// The network these tensors are for.
    fn architecture(&self) -> Architecture;

    /// Values of tensor `name` (row-major), which must have shape `expected`.
    fn values_for(&self, name: &str, expected: &[usize]) -> Result<Cow<'_, [f32]>, WeightError>;

    /// A tensor of rank `D` on `device`, checked against the expected shape.
    fn tensor<const D: usize>(
        &self,
        name: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>, WeightError> {
        let values = self.values_for(name, &expected)?.into_owned();
        Ok(Tensor::from_data(TensorData::new(values, expected), device))
    }
}

impl WeightSource for WeightMap {
    /// Told by the stem's name; a map with neither stem is read as MobileNetV2's, whose loader
    /// then names what is missing.
    fn architecture(&self) -> Architecture {
        Architecture::detect(self.names()).unwrap_or_default()
    }

    fn values_for(&self, name: &str, expected: &[usize]) -> Result<Cow<'_, [f32]>, WeightError> {
        self.values(name, expected).map(Cow::Borrowed)
    }
}

/// He-normal convolutions, N(0, 0.01) linear layers, identity BatchNorm (γ 1, β 0, mean 0,
/// variance 1). Each tensor's values depend only on the seed and its name.
#[derive(Debug, Clone, Copy)]
pub struct RandomWeights {
    pub seed: u64,
    pub arch: Architecture,
}

impl RandomWeights {
    /// A random MobileNetV2.
    pub fn new(seed: u64) -> Self {
        Self { seed, arch: Architecture::MobileNetV2 }
    }

    pub fn for_arch(arch: Architecture, seed: u64) -> Self {
        Self { seed, arch }
    }
}

/// FNV-1a: a stable per-name salt (std's hasher may change between releases).
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl WeightSource for RandomWeights {
    fn architecture(&self) -> Architecture {
        self.arch
    }

    fn values_for(&self, name: &str, expected: &[usize]) -> Result<Cow<'_, [f32]>, WeightError> {
        let len: usize = expected.iter().product();
        let constant = |v: f32| Ok(Cow::Owned(vec![v; len]));
        let mut rng = SeededRng::new(self.seed ^ name_hash(name));
        match expected.len() {
            1 if name.ends_with("running_var") || name.ends_with(".weight") => constant(1.0),
            1 => constant(0.0),
            4 => {
                let fan_in: usize = expected[1..].iter().product();
                #[allow(clippy::cast_precision_loss)] // fan-in is at most a few thousand
                let std = (1.0 / fan_in.max(1) as f32).sqrt();
                Ok(Cow::Owned((0..len).map(|_| std * rng.normal()).collect()))
            }
            _ => Ok(Cow::Owned((0..len).map(|_| 0.01 * rng.normal()).collect())),
        }
    }
}
