//! The lab's longer computations, shared by the CLI and the web app's worker: the data checks,
//! a Compare experiment (four trainings) and evaluating a kept model on its validation split.
//! Each takes an async `between` hook, called after every batch or event: the worker posts
//! progress and yields there, the CLI prints.

use std::future::Future;

use burn::module::Module;
use burn::tensor::Device;
use graft_data::{stratified_split, Dataset, Pixels};
use graft_model::{HeadKind, HeadSpec, ImageClassifier, WeightMap};
use graft_train::{
    confusion_evaluation, predict, CancelToken, Evaluation, RunOutcome, TrainConfig, TrainEvent, Trainer, ValItem,
};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::checks::{check_data, CheckItem, Finding};
use crate::compare::{CompareRow, Lesson};
use crate::features::{backbone_view, BackboneView};
use crate::layers::{agreement, layer_changes, with_imagenet_head};
use crate::lr_finder::{lr_find_full, lr_find_head, LrFinderResult, LrSweep};
use crate::verdict::verdict;

/// Pictures per batch for the lab's forward passes.
const BATCH: usize = 16;

/// The pretrained network with its ImageNet head, as it came.
pub fn pretrained_imagenet(pretrained: &WeightMap, device: &Device) -> Result<ImageClassifier, String> {
    let spec = HeadSpec::imagenet();
    ImageClassifier::from_pretrained(pretrained, &spec, device).map_err(|e| e.to_string())
}

fn pictures(dataset: &Dataset) -> Vec<&Pixels> {
    dataset.items.iter().map(|i| &i.image).collect()
}

/// What the pretrained network sees in every picture of `dataset`.
pub async fn pretrained_view<F, Fut>(
    pretrained: &WeightMap,
    dataset: &Dataset,
    device: &Device,
    between: F,
) -> Result<BackboneView, String>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let model = pretrained_imagenet(pretrained, device)?;
    backbone_view(&model, &pictures(dataset), &dataset.preprocess, device, BATCH, between).await
}

/// The data checks on `dataset`, with the split a run with `cfg` would make.
pub fn data_findings(dataset: &Dataset, view: &BackboneView, cfg: &TrainConfig) -> Vec<Finding> {
    let (_, val) = stratified_split(&dataset.labels(), dataset.classes.len(), cfg.val_fraction, cfg.seed);
    let items: Vec<CheckItem<'_>> = dataset
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| CheckItem {
            name: &item.name,
            label: item.label,
            in_validation: val.binary_search(&i).is_ok(),
            features: view.row(i),
            imagenet_confidence: view.confidence[i],
        })
        .collect();
    check_data(&dataset.classes, &items)
}

/// A kept model evaluated on the validation split its settings define (same seed, same split).
pub async fn evaluate(
    model: &ImageClassifier,
    dataset: &Dataset,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<Evaluation, String> {
    let (_, val) = stratified_split(&dataset.labels(), dataset.classes.len(), cfg.val_fraction, cfg.seed);
    let mut items = Vec::with_capacity(val.len());
    let mut loss_sum = 0.0;
    for chunk in val.chunks(BATCH) {
        let images = chunk
            .iter()
            .map(|&i| dataset.items[i].image.rgb().map(std::borrow::Cow::into_owned).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let predictions = predict(model, &dataset.preprocess, &images, device).await?;
        for (&i, p) in chunk.iter().zip(predictions) {
            let item = &dataset.items[i];
            let (predicted, confidence) = p.top_k(1).first().copied().unwrap_or((0, 0.0));
            let true_probability = p.probabilities.get(item.label).copied().unwrap_or(0.0);
            let loss = -true_probability.max(1e-12).ln();
            loss_sum += loss;
            items.push(ValItem {
                name: item.name.clone(),
                index: i,
                label: item.label,
                predicted,
                confidence,
                true_probability,
                loss,
            });
        }
    }
    let labels: Vec<usize> = items.iter().map(|i| i.label).collect();
    let predicted: Vec<usize> = items.iter().map(|i| i.predicted).collect();
    #[allow(clippy::cast_precision_loss)] // picture counts
    let mut eval =
        confusion_evaluation(dataset.classes.len(), &labels, &predicted, loss_sum / items.len().max(1) as f32);
    eval.items = items;
    Ok(eval)
}

/// What a Compare experiment reports as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CompareEvent {
    Started {
        index: usize,
        of: usize,
        lesson: Lesson,
        label: String,
    },
    /// (Not `event`: the page's message enum is tagged by that key.)
    Train {
        index: usize,
        run_event: TrainEvent,
    },
    Row {
        index: usize,
        row: CompareRow,
    },
}

/// The four lessons trained one after the other on the same data, split and seed. `pretrained`
/// supplies every run's starting point; the ImageNet agreement is measured on all pictures.
/// Returns the rows and each run's model (for prediction and export), in lesson order.
pub async fn run_compare<F, Fut>(
    dataset: &Dataset,
    pretrained: &WeightMap,
    base: &TrainConfig,
    device: &Device,
    cancel: &CancelToken,
    mut report: F,
) -> Result<Vec<(CompareRow, Option<graft_train::TrainedModel>)>, String>
where
    F: FnMut(CompareEvent) -> Fut,
    Fut: Future<Output = ()>,
{
    let reference = pretrained_view(pretrained, dataset, device, |_, _| async {}).await?;
    let mut out = Vec::new();
    for (index, lesson) in Lesson::ALL.into_iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        report(CompareEvent::Started { index, of: Lesson::ALL.len(), lesson, label: lesson.label().into() }).await;
        let (cfg, kind) = lesson.config(base);
        let spec = HeadSpec { kind, num_classes: dataset.classes.len(), seed: cfg.seed };
        let model = ImageClassifier::from_pretrained(pretrained, &spec, device).map_err(|e| e.to_string())?;
        let mut trainer =
            Trainer::new(cfg, dataset.clone(), model, device).map_err(|e| e.to_string())?.with_cancel(cancel.clone());
        let started = Instant::now();
        while let Some(event) = trainer.next_event().await {
            report(CompareEvent::Train { index, run_event: event }).await;
        }
        let seconds = started.elapsed().as_secs_f32();
        let result = trainer.finish();
        let (imagenet_agreement, layer_change) = match &result.trained {
            Some(trained) => {
                let weights = trained.model.to_weight_map().await.map_err(|e| e.to_string())?;
                let probe = with_imagenet_head(&weights, pretrained, device)?;
                let view =
                    backbone_view(&probe, &pictures(dataset), &dataset.preprocess, device, BATCH, |_, _| async {})
                        .await?;
                (Some(agreement(&reference.top1, &view.top1)), layer_changes(pretrained, &weights))
            }
            None => (None, Vec::new()),
        };
        let eval = result.summary.evaluation.as_ref();
        let mut row = CompareRow {
            lesson,
            label: lesson.label().into(),
            teaches: lesson.lesson().into(),
            verdict: String::new(),
            val_accuracy: eval.map(|e| e.accuracy),
            val_loss: eval.map(|e| e.loss),
            val_count: eval.map(|e| e.confusion.iter().flatten().map(|&c| c as usize).sum()),
            val_curve: result.summary.epochs.iter().filter_map(|e| e.val_accuracy).collect(),
            seconds,
            images_per_sec: result.summary.images_per_sec,
            imagenet_agreement,
            layer_change,
            outcome: result.outcome.describe(base.epochs),
        };
        let earlier: Vec<CompareRow> = out.iter().map(|(r, _): &(CompareRow, _)| r.clone()).collect();
        row.verdict = verdict(&row, &earlier);
        report(CompareEvent::Row { index, row: row.clone() }).await;
        let stop = matches!(result.outcome, RunOutcome::Cancelled { .. });
        out.push((row, result.trained));
        if stop {
            break;
        }
    }
    Ok(out)
}

/// What an LR range test is doing when it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrFindStage {
    /// Frozen mode: the backbone's features of the training pictures, once.
    Features,
    /// The sweep's steps.
    Sweep,
}

/// The LR range test a run with `cfg` would need, on the training part of the split that run
/// would make: a fresh head on the frozen features, or the whole network at the training's
/// per-layer rates (`layer_groups` included), with the training's optimizer and update. `steps`: `None` for the mode's default (80 frozen,
/// 40 discriminative: each of those steps is a whole fine-tune step).
pub async fn lr_find_for_run<F, Fut>(
    pretrained: &WeightMap,
    dataset: &Dataset,
    cfg: &TrainConfig,
    steps: Option<usize>,
    device: &Device,
    mut between: F,
) -> Result<LrFinderResult, String>
where
    F: FnMut(LrFindStage, usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let classes = dataset.classes.len();
    let (train, _) = stratified_split(&dataset.labels(), classes, cfg.val_fraction, cfg.seed);
    let sweep = LrSweep {
        steps: steps.unwrap_or(if cfg.mode == graft_train::Mode::Frozen { 80 } else { 40 }),
        batch: cfg.batch_size,
        seed: cfg.seed,
        label_smoothing: cfg.label_smoothing,
        weight_decay: cfg.weight_decay,
        ..LrSweep::default()
    };
    match cfg.mode {
        graft_train::Mode::Frozen => {
            let subset =
                Dataset { items: train.iter().map(|&i| dataset.items[i].clone()).collect(), ..dataset.clone() };
            let view =
                pretrained_view(pretrained, &subset, device, |d, t| between(LrFindStage::Features, d, t)).await?;
            let labels: Vec<usize> = subset.items.iter().map(|i| i.label).collect();
            lr_find_head(&view.features, &labels, classes, sweep, device, |d, t| between(LrFindStage::Sweep, d, t))
                .await
        }
        graft_train::Mode::Discriminative => {
            let spec = HeadSpec { kind: HeadKind::Replace, num_classes: classes, seed: cfg.seed };
            let model = ImageClassifier::from_pretrained(pretrained, &spec, device).map_err(|e| e.to_string())?;
            let factors = cfg.backbone_factors(model.backbone.num_layers());
            lr_find_full(model, dataset, &train, &factors, sweep, device, |d, t| between(LrFindStage::Sweep, d, t))
                .await
        }
    }
}

/// What a trained backbone still knows of ImageNet, and how far each of its layers moved.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneKnowledge {
    /// Share of `dataset`'s pictures whose ImageNet top-1 answer is the pretrained network's.
    pub imagenet_agreement: f32,
    /// Relative change of each `features.N` block's weights.
    pub layer_change: Vec<f32>,
}

/// Which view [`backbone_knowledge`] is computing when it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnowledgeStage {
    /// The pretrained network's answers.
    Pretrained,
    /// The trained backbone's answers, through ImageNet's head.
    Trained,
}

/// The trained weights (`trained`) against the pretrained ones, on `dataset`'s pictures: the
/// trained backbone is given ImageNet's head back and asked the same 1000-class question.
pub async fn backbone_knowledge<F, Fut>(
    pretrained: &WeightMap,
    trained: &WeightMap,
    dataset: &Dataset,
    device: &Device,
    mut between: F,
) -> Result<BackboneKnowledge, String>
where
    F: FnMut(KnowledgeStage, usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let layer_change = layer_changes(pretrained, trained);
    let before = pretrained_view(pretrained, dataset, device, |d, t| between(KnowledgeStage::Pretrained, d, t)).await?;
    let probe = with_imagenet_head(trained, pretrained, device)?;
    let after = backbone_view(&probe.valid(), &pictures(dataset), &dataset.preprocess, device, BATCH, |d, t| {
        between(KnowledgeStage::Trained, d, t)
    })
    .await?;
    Ok(BackboneKnowledge { imagenet_agreement: agreement(&before.top1, &after.top1), layer_change })
}
