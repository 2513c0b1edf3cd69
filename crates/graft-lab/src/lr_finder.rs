//! The learning-rate range test (fastai's "LR finder"): a short run whose learning rate grows
//! exponentially every step. The loss first barely moves (rate too small), then falls fast, then
//! explodes (rate too large); a good rate sits where it falls fastest.

use std::future::Future;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use graft_data::{Dataset, SeededRng};
use graft_model::{Architecture, Head, HeadKind, HeadSpec, ImageClassifier, RandomWeights};
use graft_train::{cross_entropy, index_tensor, read_floats, smoothed_targets};
use serde::{Deserialize, Serialize};

/// The sweep: from `start` to `end` in `steps` geometric steps of `batch` pictures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSweep {
    pub start: f64,
    pub end: f64,
    pub steps: usize,
    pub batch: usize,
    pub seed: u64,
    /// The training loss's label smoothing (its optimum has finite weights, so too large a rate
    /// overshoots it and the loss climbs, as in real training).
    pub label_smoothing: f32,
    /// The training's AdamW weight decay: the sweep tunes the optimizer that trains.
    pub weight_decay: f32,
}

impl Default for LrSweep {
    fn default() -> Self {
        let train = graft_train::TrainConfig::default();
        Self {
            start: 1e-6,
            end: 10.0,
            steps: 80,
            batch: 16,
            seed: 42,
            label_smoothing: train.label_smoothing,
            weight_decay: train.weight_decay,
        }
    }
}

impl LrSweep {
    pub fn lr(&self, step: usize) -> f64 {
        let t = step as f64 / (self.steps.max(2) - 1) as f64;
        self.start * (self.end / self.start).powf(t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFinderResult {
    pub lrs: Vec<f64>,
    pub losses: Vec<f32>,
    /// Exponential moving average of the loss (β = 0.9, bias-corrected), what is plotted.
    pub smoothed: Vec<f32>,
    /// Where the smoothed loss falls fastest (per decade of learning rate).
    pub suggestion: Option<f64>,
    /// Whether the sweep stopped early because the loss exploded.
    pub diverged: bool,
}

/// The rate of steepest descent of `smoothed` against log(lr), ignoring the noisy first and
/// the exploding last tenth of the sweep.
pub fn suggest(lrs: &[f64], smoothed: &[f32]) -> Option<f64> {
    let n = smoothed.len().min(lrs.len());
    if n < 5 {
        return None;
    }
    let (from, to) = (n / 10, n - n / 10);
    (from.max(1)..to)
        .map(|i| {
            let slope = f64::from(smoothed[i] - smoothed[i - 1]) / (lrs[i].ln() - lrs[i - 1].ln()).max(1e-12);
            (i, slope)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, slope)| *slope < 0.0)
        .map(|(i, _)| lrs[i])
}

/// Collects losses and decides when to stop.
struct Recorder {
    sweep: LrSweep,
    result: LrFinderResult,
    average: f64,
    best: f32,
}

impl Recorder {
    fn new(sweep: LrSweep) -> Self {
        let result = LrFinderResult {
            lrs: Vec::new(),
            losses: Vec::new(),
            smoothed: Vec::new(),
            suggestion: None,
            diverged: false,
        };
        Self { sweep, result, average: 0.0, best: f32::INFINITY }
    }

    /// Records a step's loss; `false` when the sweep should stop.
    fn record(&mut self, step: usize, loss: f32) -> bool {
        if !loss.is_finite() {
            self.result.diverged = true;
            return false;
        }
        self.average = 0.9 * self.average + 0.1 * f64::from(loss);
        #[allow(clippy::cast_possible_truncation)] // a loss value
        let smooth = (self.average / (1.0 - 0.9f64.powi(i32::try_from(step + 1).unwrap_or(i32::MAX)))) as f32;
        self.result.lrs.push(self.sweep.lr(step));
        self.result.losses.push(loss);
        self.result.smoothed.push(smooth);
        self.best = self.best.min(smooth);
        if step > 5 && smooth > 4.0 * self.best {
            self.result.diverged = true;
            return false;
        }
        true
    }

    fn finish(mut self) -> LrFinderResult {
        self.result.suggestion = suggest(&self.result.lrs, &self.result.smoothed);
        self.result
    }
}

async fn read_scalar(t: Tensor<1>) -> Result<f32, String> {
    read_floats(t).await?.first().copied().ok_or_else(|| "empty readback".into())
}

/// Frozen mode: a fresh head trained on fixed backbone features (`n × 1280`, row-major).
pub async fn lr_find_head<F, Fut>(
    features: &[f32],
    labels: &[usize],
    classes: usize,
    sweep: LrSweep,
    device: &Device,
    mut between: F,
) -> Result<LrFinderResult, String>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let n = labels.len();
    if n == 0 || classes < 2 {
        return Err("the LR finder needs pictures in at least two classes".into());
    }
    let d = features.len() / n;
    let device = device.clone().without_autodiff();
    let autodiff = device.clone().autodiff();
    let all = Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, d]), &device);
    let spec = HeadSpec { kind: HeadKind::Replace, num_classes: classes, seed: sweep.seed };
    let mut head: Head = Head::new(Architecture::default(), &spec, &RandomWeights::new(sweep.seed), &device)
        .map_err(|e| e.to_string())?
        .fork(&autodiff)
        .train();
    let mut optim = graft_train::adamw(sweep.weight_decay);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SeededRng::new(sweep.seed);
    let mut recorder = Recorder::new(sweep);
    let mut cursor = n;
    for step in 0..sweep.steps {
        if cursor + sweep.batch > n {
            rng.shuffle(&mut order);
            cursor = 0;
        }
        let idx: Vec<usize> = order[cursor..(cursor + sweep.batch).min(n)].to_vec();
        cursor += sweep.batch;
        let x = all.clone().select(0, index_tensor(&idx, &device)).to_device(&autodiff);
        let y: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let loss = cross_entropy(head.forward(x), smoothed_targets(&y, classes, sweep.label_smoothing, &autodiff));
        let value = read_scalar(loss.clone().detach()).await?;
        let mut grads = loss.backward();
        let g = GradientsParams::from_module(&mut grads, &head);
        head = optim.step(sweep.lr(step), head, g);
        if !recorder.record(step, value) {
            break;
        }
        between(step + 1, sweep.steps).await;
    }
    Ok(recorder.finish())
}

/// Discriminative mode: every layer learns, backbone layer `i` at lr × `factors[i]`
/// ([`graft_train::TrainConfig::backbone_factors`]), in the trainer's own update
/// ([`graft_train::step_every_layer`]), so the sweep tunes the rates that will train. Eval
/// transform, no augmentation, so the curve shows the rate and not the noise.
#[allow(clippy::too_many_arguments)]
pub async fn lr_find_full<F, Fut>(
    model: ImageClassifier,
    dataset: &Dataset,
    items: &[usize],
    factors: &[f64],
    sweep: LrSweep,
    device: &Device,
    mut between: F,
) -> Result<LrFinderResult, String>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let classes = dataset.classes.len();
    if items.is_empty() || classes < 2 {
        return Err("the LR finder needs pictures in at least two classes".into());
    }
    if factors.len() != model.backbone.num_layers() {
        return Err(format!(
            "{} learning-rate factors for a backbone of {} layers",
            factors.len(),
            model.backbone.num_layers()
        ));
    }
    let autodiff = device.clone().without_autodiff().autodiff();
    let mut model = model.fork(&autodiff).train();
    let mut optim = graft_train::adamw(sweep.weight_decay);
    let pre = &dataset.preprocess;
    let s = pre.input_size as usize;
    let mut order = items.to_vec();
    let mut rng = SeededRng::new(sweep.seed);
    let mut recorder = Recorder::new(sweep);
    let mut cursor = order.len();
    for step in 0..sweep.steps {
        if cursor + sweep.batch > order.len() {
            rng.shuffle(&mut order);
            cursor = 0;
        }
        let batch: Vec<usize> = order[cursor..(cursor + sweep.batch).min(order.len())].to_vec();
        cursor += sweep.batch;
        let mut flat = Vec::with_capacity(batch.len() * 3 * s * s);
        for &i in &batch {
            flat.extend(pre.eval(&*dataset.items[i].image.rgb().map_err(|e| e.to_string())?));
        }
        let x = Tensor::<4>::from_data(TensorData::new(flat, [batch.len(), 3, s, s]), &autodiff);
        let y: Vec<usize> = batch.iter().map(|&i| dataset.items[i].label).collect();
        let loss = cross_entropy(model.forward(x), smoothed_targets(&y, classes, sweep.label_smoothing, &autodiff));
        let value = read_scalar(loss.clone().detach()).await?;
        let mut grads = loss.backward();
        graft_train::step_every_layer(
            &mut optim,
            &mut grads,
            &mut model.head,
            &mut model.backbone,
            sweep.lr(step),
            factors,
        );
        if !recorder.record(step, value) {
            break;
        }
        between(step + 1, sweep.steps).await;
    }
    Ok(recorder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steepest_descent_is_suggested() {
        let lrs: Vec<f64> = (0..50).map(|i| 1e-5 * 10f64.powf(i as f64 / 10.0)).collect();
        // Flat, then a fall centred at index 25 (lr ≈ 3e-3), then a rise.
        let losses: Vec<f32> = (0..50)
            .map(|i| if i < 40 { 2.0 - 1.5 / (1.0 + (-(i as f32 - 25.0) / 2.0).exp()) } else { 0.5 + (i - 40) as f32 })
            .collect();
        let s = suggest(&lrs, &losses).expect("a suggestion");
        assert!((s / lrs[25]).log10().abs() < 0.15, "suggested {s}");
        assert_eq!(suggest(&lrs[..3], &losses[..3]), None);
    }

    #[test]
    fn the_sweep_tunes_the_trainings_optimizer() {
        let train = graft_train::TrainConfig::default();
        let sweep = LrSweep::default();
        assert_eq!((sweep.weight_decay, sweep.label_smoothing), (train.weight_decay, train.label_smoothing));
        // The decay reaches the sweep's AdamW: another decay, another curve.
        let (n, d) = (8, graft_model::FEATURE_DIM);
        let features: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let run = |weight_decay: f32| {
            let sweep = LrSweep { steps: 12, batch: 4, start: 1e-2, end: 1.0, weight_decay, ..LrSweep::default() };
            let device = Device::flex();
            futures::executor::block_on(lr_find_head(&features, &labels, 2, sweep, &device, |_, _| async {}))
                .expect("the sweep runs")
                .losses
        };
        let (light, heavy) = (run(0.0), run(0.5));
        assert_eq!(light[0], heavy[0], "the first loss comes before any update");
        assert_ne!(light, heavy);
    }
}
