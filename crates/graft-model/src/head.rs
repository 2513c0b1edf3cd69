//! Classifier heads: the replaced head (the product), the stacked head (a teaching experiment)
//! and the kept ImageNet head (when every user class is an ImageNet class).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use graft_data::SeededRng;
use serde::{Deserialize, Serialize};

use crate::arch::Architecture;
use crate::mobilenet::{FEATURE_DIM, IMAGENET_CLASSES};
use crate::source::WeightSource;
use crate::weights::{NamedTensor, WeightError, WeightMap};

/// torchvision's classifier dropout.
const DROPOUT: f64 = 0.2;

/// How the new head relates to the pretrained 1000-way ImageNet classifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HeadKind {
    /// Discard the ImageNet classifier; fresh `Linear(1280, N)` (the right way).
    Replace,
    /// Keep the ImageNet classifier frozen and put `Linear(1000, N)` on its logits: the classic
    /// mistake, offered only as an experiment. Everything squeezes through 1000 ImageNet scores.
    Stacked,
    /// Every user class is an ImageNet class: start from those rows of the ImageNet classifier.
    KeepImagenet { rows: Vec<usize> },
}

/// Which head to build, for how many classes, and the seed of its random initialisation.
#[derive(Debug, Clone)]
pub struct HeadSpec {
    pub kind: HeadKind,
    pub num_classes: usize,
    pub seed: u64,
}

impl HeadSpec {
    /// The pretrained network's own 1000-class ImageNet head, every row kept.
    pub fn imagenet() -> Self {
        Self {
            kind: HeadKind::KeepImagenet { rows: (0..crate::IMAGENET_CLASSES).collect() },
            num_classes: crate::IMAGENET_CLASSES,
            seed: 0,
        }
    }
}

/// Dropout is applied by the trainer through [`Head::forward_train`] with a mask drawn from a
/// seeded host RNG, so runs repeat exactly whatever the backend (burn's dropout draws from a
/// device-global RNG shared by everything on that device).
#[derive(Module, Debug)]
pub struct Head {
    /// What this head is: the one description the trainer and the manifest read.
    #[module(skip)]
    pub kind: HeadKind,
    /// The network it sits on: the names its layers export under.
    #[module(skip)]
    pub arch: Architecture,
    pub dropout: f64,
    /// Only for [`HeadKind::Stacked`]: the pretrained ImageNet classifier, never trained.
    pub imagenet: Option<Linear>,
    /// The trainable layer producing the user's N logits.
    pub linear: Linear,
}

/// Builds a burn `Linear` (weight stored `[in, out]`) from a PyTorch-layout `[out, in]` weight.
fn linear_from_torch(
    weights: &impl WeightSource,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear, WeightError> {
    let mut linear = LinearConfig::new(d_in, d_out).init(device);
    let w = weights.tensor(&format!("{prefix}.weight"), [d_out, d_in], device)?;
    linear.weight = Param::from_tensor(w.transpose());
    linear.bias = Some(Param::from_tensor(weights.tensor(&format!("{prefix}.bias"), [d_out], device)?));
    Ok(linear)
}

/// A fresh layer initialised like torchvision's classifier: N(0, 0.01) weights, zero bias,
/// drawn on the host from `seed` (the same head on every backend).
fn fresh_linear(d_in: usize, d_out: usize, seed: u64, device: &Device) -> Linear {
    let mut rng = SeededRng::new(seed);
    let values: Vec<f32> = (0..d_in * d_out).map(|_| 0.01 * rng.normal()).collect();
    let mut linear = LinearConfig::new(d_in, d_out).init(device);
    linear.weight = Param::from_tensor(Tensor::from_data(TensorData::new(values, [d_in, d_out]), device));
    linear.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    linear
}

impl Head {
    /// Builds the head. `pretrained` must hold the ImageNet classifier (`classifier.1.*` /
    /// `_fc.*`) for `Stacked` and `KeepImagenet`.
    pub fn new(
        arch: Architecture,
        spec: &HeadSpec,
        pretrained: &impl WeightSource,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let imagenet_layer = arch.head_layer(0);
        let n = spec.num_classes;
        if n == 0 {
            return Err(WeightError::Mismatch("a head needs at least one class".into()));
        }
        let (imagenet, linear) = match &spec.kind {
            HeadKind::Replace => (None, fresh_linear(FEATURE_DIM, n, spec.seed, device)),
            HeadKind::Stacked => {
                let old =
                    linear_from_torch(pretrained, &imagenet_layer, FEATURE_DIM, IMAGENET_CLASSES, device)?.freeze();
                (Some(old), fresh_linear(IMAGENET_CLASSES, n, spec.seed, device))
            }
            HeadKind::KeepImagenet { rows } => {
                if rows.len() != n {
                    return Err(WeightError::Mismatch(format!(
                        "keeping the ImageNet head needs one ImageNet class per class: {} rows for {n} classes",
                        rows.len()
                    )));
                }
                if let Some(bad) = rows.iter().find(|&&r| r >= IMAGENET_CLASSES) {
                    return Err(WeightError::Mismatch(format!("ImageNet has no class {bad}")));
                }
                let w = pretrained.values_for(&format!("{imagenet_layer}.weight"), &[IMAGENET_CLASSES, FEATURE_DIM])?;
                let b = pretrained.values_for(&format!("{imagenet_layer}.bias"), &[IMAGENET_CLASSES])?;
                let mut picked = WeightMap::default();
                let w_rows = rows.iter().flat_map(|&r| w[r * FEATURE_DIM..(r + 1) * FEATURE_DIM].iter().copied());
                picked.insert("w.weight", vec![rows.len(), FEATURE_DIM], w_rows.collect());
                picked.insert("w.bias", vec![rows.len()], rows.iter().map(|&r| b[r]).collect());
                (None, linear_from_torch(&picked, "w", FEATURE_DIM, rows.len(), device)?)
            }
        };
        Ok(Self { kind: spec.kind.clone(), arch, dropout: DROPOUT, imagenet, linear })
    }

    /// Loads a trained head back from exported weights (`classifier.1`, or `classifier.1`+`.2`
    /// for the stacked experiment; `_fc` and `_fc2` on EfficientNet-Lite0).
    pub fn load(
        arch: Architecture,
        kind: &HeadKind,
        num_classes: usize,
        weights: &impl WeightSource,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let dropout = DROPOUT;
        let kind = kind.clone();
        match kind {
            HeadKind::Stacked => Ok(Self {
                kind,
                arch,
                dropout,
                imagenet: Some(
                    linear_from_torch(weights, &arch.head_layer(0), FEATURE_DIM, IMAGENET_CLASSES, device)?.freeze(),
                ),
                linear: linear_from_torch(weights, &arch.head_layer(1), IMAGENET_CLASSES, num_classes, device)?,
            }),
            _ => Ok(Self {
                kind,
                arch,
                dropout,
                imagenet: None,
                linear: linear_from_torch(weights, &arch.head_layer(0), FEATURE_DIM, num_classes, device)?,
            }),
        }
    }

    /// Pooled features `[N, 1280]` → logits `[N, classes]` (inference: no dropout).
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        match &self.imagenet {
            Some(old) => self.linear.forward(old.forward(features)),
            None => self.linear.forward(features),
        }
    }

    /// Training forward: inverted dropout on the features with a host-drawn mask.
    pub fn forward_train(&self, features: Tensor<2>, rng: &mut SeededRng) -> Tensor<2> {
        let [n, d] = features.dims();
        #[allow(clippy::cast_possible_truncation)] // a probability: f32 holds it
        let keep = 1.0 - self.dropout as f32;
        let mask: Vec<f32> = (0..n * d).map(|_| if rng.next_f32() < keep { 1.0 / keep } else { 0.0 }).collect();
        let mask = Tensor::from_data(TensorData::new(mask, [n, d]), &features.device());
        let x = features * mask;
        match &self.imagenet {
            Some(old) => self.linear.forward(old.forward(x)),
            None => self.linear.forward(x),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.linear.weight.val().dims()[1]
    }

    /// Checkpoint names: `classifier.1` / `_fc` (and `classifier.2` / `_fc2` for the stacked
    /// experiment).
    pub fn export(&self, out: &mut Vec<NamedTensor>) {
        let mut layers = Vec::new();
        if let Some(old) = &self.imagenet {
            layers.push(old);
        }
        layers.push(&self.linear);
        for (i, linear) in layers.into_iter().enumerate() {
            let prefix = self.arch.head_layer(i);
            out.push(NamedTensor::new(format!("{prefix}.weight"), linear.weight.val().transpose()));
            if let Some(bias) = &linear.bias {
                out.push(NamedTensor::new(format!("{prefix}.bias"), bias.val()));
            }
        }
    }
}
