//! Checking a compute device's answers before trusting it: one real training step of the model
//! (forward, label-smoothed cross-entropy, backward, the per-layer AdamW update) at batch 2 on a
//! small deterministic input, read back as a [`ProbeReading`] — the loss, the logits, gradients
//! of a few kinds of layers and how far the optimiser moved a few weights. The web app runs it on
//! WebGPU and on the CPU (flex) and compares the two with [`compare_readings`]: a GPU whose
//! driver miscompiles or silently skips a kernel answers differently and is refused.

use burn::module::{Module, Param};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use graft_data::SeededRng;
use graft_model::{Backbone, Head, HeadKind, HeadSpec, ImageClassifier, WeightSource};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::batch::read_floats;
use crate::config::TrainConfig;
use crate::loss::{cross_entropy, smoothed_targets};
use crate::trainer::step_every_layer;

/// Side of the probe's square input (MobileNetV2 downsamples 32×: a 2×2 final map).
pub const PROBE_INPUT: u32 = 64;
/// Images in the probe's batch.
pub const PROBE_BATCH: usize = 2;
/// Classes of the probe's replaced head.
pub const PROBE_CLASSES: usize = 3;
/// Seed of the input, the head's initialisation and the dropout mask.
pub const PROBE_SEED: u64 = 20_261_130;
/// Values read per tensor (the first ones, row-major): enough to see a wrong kernel.
pub const PROBE_VALUES: usize = 2048;

/// How far a device's reading may be from the reference, per quantity: `abs + rel × (the largest
/// magnitude of that quantity in the reference)`, with `update_rel` in place of `rel` for the
/// optimiser's updates. Scaling by the quantity's own magnitude keeps a gradient of 1e-5 and a
/// logit of 3 on the same footing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
    pub update_rel: f32,
}

impl Tolerance {
    /// The difference allowed for quantity `what` whose largest reference magnitude is `scale`.
    pub fn allowed(&self, what: &str, scale: f32) -> f32 {
        let rel = if what.starts_with("update") { self.update_rel } else { self.rel };
        self.abs + rel * scale
    }
}

/// The tolerance the web app applies. The loss, logits and gradients are computed directly: f32
/// rounding in another summation order moves them by ~1e-5 of their scale at most (measured:
/// README). AdamW's first update divides each gradient by its own magnitude (+1e-5), so where a
/// gradient is ~1e-5 a 1e-7 difference moves the update by ~2e-3 of its scale; updates get a
/// looser bound. A kernel that computes the wrong thing or skips its dispatch moves a quantity
/// by its whole scale.
pub const PROBE_TOLERANCE: Tolerance = Tolerance { abs: 1e-6, rel: 1e-3, update_rel: 5e-2 };

/// One quantity of a reading: what it is, and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeQuantity {
    pub what: String,
    pub values: Vec<f32>,
}

/// What one training step computed on a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReading {
    /// The loss, the logits, gradients, weight updates — in a fixed order.
    pub quantities: Vec<ProbeQuantity>,
    /// Wall time of the step and its readbacks (the first one on a GPU includes compiling its
    /// kernels).
    pub seconds: f32,
}

impl ProbeReading {
    pub fn get(&self, what: &str) -> Option<&[f32]> {
        self.quantities.iter().find(|q| q.what == what).map(|q| q.values.as_slice())
    }

    /// A testing aid: the same reading with `what` wrong by `by` (every value of the quantities
    /// whose name starts with `what`: `logits`, `loss`, `gradient`, `update`).
    pub fn perturbed(mut self, what: &str, by: f32) -> Self {
        for q in self.quantities.iter_mut().filter(|q| q.what.starts_with(what)) {
            q.values.iter_mut().for_each(|v| *v += by);
        }
        self
    }
}

/// How one quantity of a reading compares with the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantityDiff {
    pub what: String,
    /// Largest absolute difference (infinite when the candidate is not a number or has another
    /// shape).
    pub max_diff: f32,
    /// The difference allowed for it.
    pub allowed: f32,
}

impl QuantityDiff {
    pub fn passed(&self) -> bool {
        self.max_diff <= self.allowed
    }

    /// The difference relative to the allowance (above 1: failed).
    pub fn ratio(&self) -> f32 {
        self.max_diff / self.allowed.max(f32::MIN_POSITIVE)
    }
}

/// A candidate reading against the reference, quantity by quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeComparison {
    pub diffs: Vec<QuantityDiff>,
    pub tolerance: Tolerance,
}

impl ProbeComparison {
    pub fn passed(&self) -> bool {
        !self.diffs.is_empty() && self.diffs.iter().all(QuantityDiff::passed)
    }

    /// The quantity closest to (or furthest past) its allowance.
    pub fn worst(&self) -> Option<&QuantityDiff> {
        self.diffs.iter().max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
    }

    /// The quantities past their allowance.
    pub fn failures(&self) -> Vec<&QuantityDiff> {
        self.diffs.iter().filter(|d| !d.passed()).collect()
    }

    /// In words: "logits differ by 0.8 (allowed 0.0031)" for the worst failure, or the closest
    /// call when everything passed.
    pub fn describe(&self) -> String {
        let Some(worst) = self.worst() else { return "nothing was compared".into() };
        let failures = self.failures();
        let verb = if worst.passed() { "largest difference" } else { "differ by" };
        let more = match failures.len() {
            0 | 1 => String::new(),
            n => format!(" and {} more quantities", n - 1),
        };
        if worst.passed() {
            format!("{verb} {:.2e} in {} (allowed {:.2e})", worst.max_diff, worst.what, worst.allowed)
        } else {
            format!("{} {verb} {:.3e} (allowed {:.2e}){more}", worst.what, worst.max_diff, worst.allowed)
        }
    }
}

/// Compares `candidate` with `reference` quantity by quantity (see [`Tolerance`]).
pub fn compare_readings(reference: &ProbeReading, candidate: &ProbeReading, tolerance: Tolerance) -> ProbeComparison {
    let diffs = reference
        .quantities
        .iter()
        .map(|r| {
            let scale = r.values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let allowed = tolerance.allowed(&r.what, scale);
            let max_diff = match candidate.get(&r.what) {
                Some(c) if c.len() == r.values.len() => r.values.iter().zip(c).fold(0f32, |m, (a, b)| {
                    let d = (a - b).abs();
                    if d.is_nan() {
                        f32::INFINITY
                    } else {
                        m.max(d)
                    }
                }),
                _ => f32::INFINITY,
            };
            QuantityDiff { what: r.what.clone(), max_diff, allowed }
        })
        .collect();
    ProbeComparison { diffs, tolerance }
}

/// `count` pseudo-random values shaped like normalised image pixels, from `seed`.
pub fn synthetic_pixels(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..count).map(|_| rng.normal().clamp(-2.0, 2.5)).collect()
}

/// A classifier being fine-tuned, and one discriminative training step of it — exactly the
/// trainer's: the dropout head, label-smoothed cross-entropy, backward, then every layer's AdamW
/// update at its own rate ([`step_every_layer`]).
pub(crate) struct StepModel {
    pub backbone: Backbone,
    pub head: Head,
    optimizer: crate::optim::GraftAdamW,
    factors: Vec<f64>,
    cfg: TrainConfig,
    pub autodiff: Device,
}

impl StepModel {
    pub fn new(pretrained: &impl WeightSource, classes: usize, seed: u64, device: &Device) -> Result<Self, String> {
        let device = device.clone().without_autodiff();
        let autodiff = device.clone().autodiff();
        let spec = HeadSpec { kind: HeadKind::Replace, num_classes: classes, seed };
        let model = ImageClassifier::from_pretrained(pretrained, &spec, &device).map_err(|e| e.to_string())?;
        let cfg = TrainConfig::default();
        Ok(Self {
            factors: cfg.backbone_factors(model.backbone.num_layers()),
            // The trainer's own optimiser: on a GPU its fused AdamW kernel is checked too.
            optimizer: crate::optim::adamw(cfg.weight_decay),
            backbone: model.backbone.fork(&autodiff).train(),
            head: model.head.fork(&autodiff).train(),
            cfg,
            autodiff,
        })
    }

    /// Forward and loss of one batch (`pixels`: `[n, 3, size, size]` row-major).
    pub fn forward(&self, pixels: Vec<f32>, size: u32, labels: &[usize], seed: u64) -> (Tensor<2>, Tensor<1>) {
        let s = size as usize;
        let x = Tensor::from_data(TensorData::new(pixels, [labels.len(), 3, s, s]), &self.autodiff);
        let mut dropout = SeededRng::new(seed);
        let logits = self.head.forward_train(self.backbone.forward(x), &mut dropout);
        let classes = self.head.num_classes();
        let targets = smoothed_targets(labels, classes, self.cfg.label_smoothing, &self.autodiff);
        let loss = cross_entropy(logits.clone(), targets);
        (logits, loss)
    }

    /// The optimiser's update of every layer from `grads`.
    pub fn update(&mut self, grads: &mut Gradients) {
        step_every_layer(&mut self.optimizer, grads, &mut self.head, &mut self.backbone, self.cfg.lr, &self.factors);
    }
}

/// The first [`PROBE_VALUES`] values of a tensor, flattened.
fn first_values<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n]).narrow(0, 0, n.min(PROBE_VALUES))
}

fn grad_of<const D: usize>(param: &Param<Tensor<D>>, grads: &Gradients, what: &str) -> Result<Tensor<1>, String> {
    param.val().grad(grads).map(first_values).ok_or_else(|| format!("no gradient for {what}"))
}

fn value_of<const D: usize>(param: &Param<Tensor<D>>) -> Tensor<1> {
    first_values(param.val().detach())
}

/// The watched parameters: a full 3×3 conv (the stem: the end of the backward chain, so every
/// layer's backward shows in it), a depthwise 3×3 conv, a 1×1 conv, a BatchNorm γ and the head.
fn watched(backbone: &Backbone, head: &Head, grads: Option<&Gradients>) -> Result<Vec<(String, Tensor<1>)>, String> {
    let depthwise = &backbone.blocks[1].layers[1];
    let pointwise = &backbone.blocks[1].layers[2];
    let named4 = [
        ("features.0.0.weight (stem 3×3 conv)", &backbone.stem.conv.weight),
        ("features.2.conv.1.0.weight (depthwise 3×3 conv)", &depthwise.conv.weight),
        ("features.2.conv.2.weight (1×1 conv)", &pointwise.conv.weight),
    ];
    let named1 = [("features.18.1.weight (BatchNorm γ)", &backbone.last.bn.gamma)];
    let head_weight = ("classifier.1.weight (head)", &head.linear.weight);
    let mut out = Vec::new();
    let mut push = |what: &str, t: Result<Tensor<1>, String>| -> Result<(), String> {
        out.push((what.to_string(), t?));
        Ok(())
    };
    for (what, p) in named4 {
        push(what, grads.map_or_else(|| Ok(value_of(p)), |g| grad_of(p, g, what)))?;
    }
    for (what, p) in named1 {
        push(what, grads.map_or_else(|| Ok(value_of(p)), |g| grad_of(p, g, what)))?;
    }
    let (what, p) = head_weight;
    push(what, grads.map_or_else(|| Ok(value_of(p)), |g| grad_of(p, g, what)))?;
    Ok(out)
}

/// One training step of the real model on `device`, read back (see the module's doc). The same
/// `pretrained` weights and seed give the same step on every device.
pub async fn probe_step(pretrained: &impl WeightSource, device: &Device) -> Result<ProbeReading, String> {
    let t0 = Instant::now();
    let mut model = StepModel::new(pretrained, PROBE_CLASSES, PROBE_SEED, device)?;
    let s = PROBE_INPUT as usize;
    let pixels = synthetic_pixels(PROBE_BATCH * 3 * s * s, PROBE_SEED);
    let labels: Vec<usize> = (0..PROBE_BATCH).map(|i| i % PROBE_CLASSES).collect();

    let mut before = Vec::new();
    for (_, t) in watched(&model.backbone, &model.head, None)? {
        before.push(read_floats(t).await?);
    }
    let (logits, loss) = model.forward(pixels, PROBE_INPUT, &labels, PROBE_SEED);
    let mut grads = loss.backward();
    let gradients = watched(&model.backbone, &model.head, Some(&grads))?;
    model.update(&mut grads);
    let after = watched(&model.backbone, &model.head, None)?;

    let mut quantities = vec![
        ProbeQuantity { what: "loss".into(), values: read_floats(loss.detach()).await? },
        ProbeQuantity { what: "logits".into(), values: read_floats(logits.detach()).await? },
    ];
    for (what, t) in gradients {
        quantities.push(ProbeQuantity { what: format!("gradient of {what}"), values: read_floats(t).await? });
    }
    for (b, (what, a)) in before.into_iter().zip(after) {
        let a = read_floats(a).await?;
        let update = a.iter().zip(&b).map(|(a, b)| a - b).collect();
        quantities.push(ProbeQuantity { what: format!("update of {what}"), values: update });
    }
    Ok(ProbeReading { quantities, seconds: t0.elapsed().as_secs_f32() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(values: &[(&str, Vec<f32>)]) -> ProbeReading {
        ProbeReading {
            quantities: values.iter().map(|(w, v)| ProbeQuantity { what: (*w).into(), values: v.clone() }).collect(),
            seconds: 0.0,
        }
    }

    #[test]
    fn the_allowance_scales_with_each_quantity() {
        let r = reading(&[("logits", vec![2.0, -4.0]), ("gradient of x", vec![1e-5, -2e-5])]);
        let tol = Tolerance { abs: 0.0, rel: 1e-2, update_rel: 1e-2 };
        let close = reading(&[("logits", vec![2.03, -4.0]), ("gradient of x", vec![1.01e-5, -2e-5])]);
        let c = compare_readings(&r, &close, tol);
        assert!(c.passed(), "{c:?}");
        let off = reading(&[("logits", vec![2.0, -4.0]), ("gradient of x", vec![1e-5, 2e-5])]);
        let c = compare_readings(&r, &off, tol);
        assert!(!c.passed());
        assert_eq!(c.failures().len(), 1);
        assert!(c.describe().starts_with("gradient of x differ by"), "{}", c.describe());
    }

    #[test]
    fn nan_missing_and_reshaped_quantities_fail() {
        let r = reading(&[("loss", vec![1.0]), ("logits", vec![1.0, 2.0])]);
        for bad in [
            reading(&[("loss", vec![f32::NAN]), ("logits", vec![1.0, 2.0])]),
            reading(&[("loss", vec![1.0])]),
            reading(&[("loss", vec![1.0]), ("logits", vec![1.0])]),
        ] {
            assert!(!compare_readings(&r, &bad, PROBE_TOLERANCE).passed(), "{bad:?}");
        }
        assert!(!compare_readings(&reading(&[]), &r, PROBE_TOLERANCE).passed(), "nothing compared is no pass");
    }
}
