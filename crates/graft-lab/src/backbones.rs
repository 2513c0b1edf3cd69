//! Compare backbones: the same pictures, split, seed, mode and settings trained on each
//! pretrained network in turn, side by side — validation accuracy, time, speed and size — with
//! a verdict written from the numbers (a difference smaller than what the validation set can
//! resolve is called a tie).

use std::future::Future;

use burn::tensor::Device;
use graft_data::Dataset;
use graft_model::{Architecture, HeadKind, HeadSpec, ImageClassifier, WeightMap, WeightSource};
use graft_train::{CancelToken, RunOutcome, TrainConfig, TrainEvent, Trainer};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::verdict::{compare, Difference};

/// One backbone's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRow {
    pub arch: Architecture,
    /// Parameters of the trained model (backbone and the user's head).
    pub parameters: usize,
    /// Size of the exported `model.safetensors` (f32), in MB.
    pub model_mb: f32,
    /// Multiply-adds of one 224² forward pass, in millions.
    pub multiply_adds_m: f32,
    /// The published ImageNet top-1 of the pretrained weights (percent).
    pub imagenet_top1: f32,
    pub val_accuracy: Option<f32>,
    pub val_count: Option<usize>,
    pub seconds: f32,
    pub images_per_sec: f32,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BackboneCompareEvent {
    Started {
        index: usize,
        of: usize,
        arch: Architecture,
    },
    /// (Not `event`: the page's message enum is tagged by that key.)
    Train {
        index: usize,
        run_event: TrainEvent,
    },
    Row {
        index: usize,
        row: BackboneRow,
    },
}

/// Trains `base` (its mode and settings, a replaced head) once on each of `pretrained`'s
/// networks, in order; stops after a cancelled run.
pub async fn run_backbone_compare<F, Fut>(
    dataset: &Dataset,
    pretrained: &[&WeightMap],
    base: &TrainConfig,
    device: &Device,
    cancel: &CancelToken,
    mut report: F,
) -> Result<Vec<BackboneRow>, String>
where
    F: FnMut(BackboneCompareEvent) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut rows = Vec::new();
    for (index, weights) in pretrained.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        let arch = weights.architecture();
        report(BackboneCompareEvent::Started { index, of: pretrained.len(), arch }).await;
        let cfg = TrainConfig { backbone: arch, ..base.clone() };
        // The same pictures, normalised the way this network was trained.
        let data = Dataset { preprocess: cfg.preprocess(), ..dataset.clone() };
        let spec = HeadSpec { kind: HeadKind::Replace, num_classes: data.classes.len(), seed: cfg.seed };
        let model = ImageClassifier::from_pretrained(*weights, &spec, device).map_err(|e| e.to_string())?;
        let parameters: usize = model
            .named_tensors()
            .iter()
            .filter(|t| !t.name.contains("running_"))
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        let stored: usize = model.named_tensors().iter().map(|t| t.shape.iter().product::<usize>()).sum();
        let mut trainer =
            Trainer::new(cfg, data, model, device).map_err(|e| e.to_string())?.with_cancel(cancel.clone());
        let started = Instant::now();
        while let Some(event) = trainer.next_event().await {
            report(BackboneCompareEvent::Train { index, run_event: event }).await;
        }
        let seconds = started.elapsed().as_secs_f32();
        let result = trainer.finish();
        let eval = result.summary.evaluation.as_ref();
        #[allow(clippy::cast_precision_loss)] // sizes and counts shown with a few digits
        let row = BackboneRow {
            arch,
            parameters,
            model_mb: (stored * 4) as f32 / 1e6,
            multiply_adds_m: arch.multiply_adds(224) as f32 / 1e6,
            imagenet_top1: arch.imagenet_top1(),
            val_accuracy: eval.map(|e| e.accuracy),
            val_count: eval.map(|e| e.confusion.iter().flatten().map(|&c| c as usize).sum()),
            seconds,
            images_per_sec: result.summary.images_per_sec,
            outcome: result.outcome.describe(base.epochs),
        };
        report(BackboneCompareEvent::Row { index, row: row.clone() }).await;
        rows.push(row);
        if matches!(result.outcome, RunOutcome::Cancelled { .. }) {
            break;
        }
    }
    Ok(rows)
}

/// What the table says, from its numbers: which backbone scored higher, whether the gap is
/// more than the validation set can resolve, and what the faster one costs or saves.
pub fn backbone_verdict(rows: &[BackboneRow]) -> String {
    let scored: Vec<(&BackboneRow, f32)> = rows.iter().filter_map(|r| r.val_accuracy.map(|a| (r, a))).collect();
    let [(a, acc_a), (b, acc_b)] = scored[..] else {
        return "Both backbones need a finished run with a validation result to be compared.".into();
    };
    let n = a.val_count.unwrap_or(0).min(b.val_count.unwrap_or(0));
    let (fast, slow) = if a.images_per_sec >= b.images_per_sec { (a, b) } else { (b, a) };
    let speed = format!(
        "{} trained {:.1}× as fast here ({:.1} vs {:.1} img/s) and is {:.1} MB against {:.1} MB.",
        fast.arch.title(),
        fast.images_per_sec / slow.images_per_sec.max(1e-9),
        fast.images_per_sec,
        slow.images_per_sec,
        fast.model_mb,
        slow.model_mb
    );
    let pct = |v: f32| v * 100.0;
    let accuracy = match compare(acc_a, acc_b, n) {
        Difference::WithinNoise => format!(
            "{} {:.0} % against {} {:.0} %: a tie on {n} validation pictures (a gap this small is within what so few can resolve), although {} scores {:.1} points higher on ImageNet.",
            a.arch.title(),
            pct(acc_a),
            b.arch.title(),
            pct(acc_b),
            if a.imagenet_top1 > b.imagenet_top1 { a.arch.title() } else { b.arch.title() },
            (a.imagenet_top1 - b.imagenet_top1).abs()
        ),
        Difference::Ahead | Difference::Behind => {
            let (win, lose, acc_win, acc_lose) = if acc_a > acc_b { (a, b, acc_a, acc_b) } else { (b, a, acc_b, acc_a) };
            let expected = if win.imagenet_top1 >= lose.imagenet_top1 {
                "as its higher ImageNet accuracy suggests"
            } else {
                "although it is the weaker one on ImageNet: pretrained features that suit these classes matter more than the ImageNet score"
            };
            format!(
                "{} won, {:.0} % against {:.0} % on {n} validation pictures, more than the noise — {expected}.",
                win.arch.title(),
                pct(acc_win),
                pct(acc_lose)
            )
        }
    };
    format!("{accuracy} {speed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(arch: Architecture, accuracy: f32, images_per_sec: f32) -> BackboneRow {
        BackboneRow {
            arch,
            parameters: 0,
            model_mb: if arch == Architecture::MobileNetV2 { 9.0 } else { 13.4 },
            multiply_adds_m: 0.0,
            imagenet_top1: arch.imagenet_top1(),
            val_accuracy: Some(accuracy),
            val_count: Some(40),
            seconds: 1.0,
            images_per_sec,
            outcome: "finished".into(),
        }
    }

    #[test]
    fn the_verdict_follows_the_numbers() {
        let (m, e) = (Architecture::MobileNetV2, Architecture::EfficientNetLite0);
        let tie = backbone_verdict(&[row(m, 0.80, 30.0), row(e, 0.825, 20.0)]);
        assert!(
            tie.starts_with("MobileNetV2 80 % against EfficientNet-Lite0 82 %: a tie on 40 validation pictures"),
            "{tie}"
        );
        assert!(tie.contains("MobileNetV2 trained 1.5× as fast"), "{tie}");
        let lite_wins = backbone_verdict(&[row(m, 0.60, 30.0), row(e, 0.95, 20.0)]);
        assert!(lite_wins.starts_with("EfficientNet-Lite0 won, 95 % against 60 %"), "{lite_wins}");
        assert!(lite_wins.contains("as its higher ImageNet accuracy suggests"), "{lite_wins}");
        let upset = backbone_verdict(&[row(m, 0.95, 30.0), row(e, 0.60, 20.0)]);
        assert!(upset.contains("although it is the weaker one on ImageNet"), "{upset}");
        let unfinished = BackboneRow { val_accuracy: None, ..row(e, 0.0, 1.0) };
        assert!(backbone_verdict(&[row(m, 0.9, 3.0), unfinished]).starts_with("Both backbones need"));
    }
}
