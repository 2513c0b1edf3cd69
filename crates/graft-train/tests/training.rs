//! Trainer tests on the flex CPU backend. Accuracy and export use the real pretrained backbone and
//! real photos (scripts/setup.sh converts the weights, scripts/fetch-photos.sh fetches the
//! photos); the mechanics (what moves, what stays, how a run ends) use a randomly initialised
//! MobileNetV2 and small inputs, so they run in seconds.

#![allow(clippy::cast_possible_truncation)] // test fixtures build small synthetic values

use std::path::PathBuf;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::{stratified_split, Augment, Dataset, LabelledBytes};
use graft_model::{HeadKind, HeadSpec, ImageClassifier, RandomWeights, WeightMap};
use graft_train::{
    export_model, predict, CancelToken, ExportBundle, FailureReason, Mode, RunOutcome, RunResult, TrainConfig,
    TrainEvent, Trainer,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pretrained() -> WeightMap {
    let path = repo().join("static/weights/mobilenet_v2.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    WeightMap::from_safetensors_bytes(bytes).unwrap()
}

/// Real photos: up to `per_class` files from each of `classes` (sorted, so runs are stable).
fn photos(classes: &[&str], per_class: usize) -> Vec<LabelledBytes> {
    let root = repo().join("data/photos");
    let mut out = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-photos.sh", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.into_iter().take(per_class) {
            let name = format!("{class}/{}", f.file_name().unwrap().to_string_lossy());
            out.push(LabelledBytes { label, name, bytes: std::fs::read(&f).unwrap() });
        }
    }
    out
}

fn names(classes: &[&str]) -> Vec<String> {
    classes.iter().map(|c| c.to_string()).collect()
}

fn dataset(classes: &[&str], per_class: usize, input: u32) -> Dataset {
    let cfg = TrainConfig { input_size: input, ..TrainConfig::default() };
    Dataset::from_labelled_bytes(names(classes), photos(classes, per_class), cfg.preprocess())
}

fn pretrained_model(classes: usize, kind: HeadKind, device: &Device) -> ImageClassifier {
    ImageClassifier::from_pretrained(&pretrained(), &HeadSpec { kind, num_classes: classes, seed: 3 }, device).unwrap()
}

fn random_model(classes: usize, device: &Device) -> ImageClassifier {
    ImageClassifier::random(classes, 11, device).unwrap()
}

/// Small, quick settings for mechanics tests.
fn quick(mode: Mode) -> TrainConfig {
    TrainConfig { mode, epochs: 2, input_size: 64, batch_size: 4, frozen_views: 1, ..TrainConfig::default() }
}

/// Pulls every event, then finishes the run.
fn run(mut trainer: Trainer) -> (Vec<TrainEvent>, RunResult) {
    let mut events = Vec::new();
    while let Some(e) = block_on(trainer.next_event()) {
        events.push(e);
    }
    (events, trainer.finish())
}

fn weights_of(model: &ImageClassifier) -> WeightMap {
    block_on(model.to_weight_map()).unwrap()
}

/// ‖after − before‖ / ‖before‖ over the tensors whose names start with `prefix` (BatchNorm
/// running statistics excluded).
fn relative_change(before: &WeightMap, after: &WeightMap, prefix: &str) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    let mut found = false;
    for name in before.names().filter(|n| n.starts_with(prefix) && !n.contains("running_")) {
        found = true;
        let shape = before.shape(name).unwrap();
        for (a, b) in before.values(name, shape).unwrap().iter().zip(after.values(name, shape).unwrap()) {
            diff += f64::from(a - b).powi(2);
            norm += f64::from(*a).powi(2);
        }
    }
    assert!(found, "no tensor named {prefix}*");
    (diff / norm.max(1e-30)).sqrt()
}

fn trained_weights(result: &RunResult) -> WeightMap {
    weights_of(&result.trained.as_ref().expect("the run keeps a model").model)
}

#[test]
fn frozen_training_on_real_photos_beats_chance_and_exports_what_it_evaluated() {
    let device = Device::flex();
    let classes = ["bird", "flower", "fruit", "mammal", "vegetable"];
    let data = dataset(&classes, 30, 224);
    let model = pretrained_model(classes.len(), HeadKind::Replace, &device);
    let before = weights_of(&model);
    let cfg = TrainConfig { mode: Mode::Frozen, epochs: 8, frozen_views: 2, lr: 3e-3, ..TrainConfig::default() };
    let (events, result) = run(Trainer::new(cfg, data, model, &device).unwrap());

    assert_eq!(result.outcome, RunOutcome::Done);
    assert!(matches!(events.last(), Some(TrainEvent::Done(_))), "the stream ends in its outcome");
    let eval = result.summary.evaluation.clone().expect("validation ran");
    println!("frozen: val accuracy {:.3}, {:.1} img/s", eval.accuracy, result.summary.images_per_sec);
    assert!(eval.accuracy >= 0.6, "validation accuracy {} (chance 0.2)", eval.accuracy);
    assert_eq!(eval.confusion.len(), 5);
    assert_eq!(events.iter().filter(|e| matches!(e, TrainEvent::Epoch(_))).count(), 8);

    let trained = result.trained.expect("a finished run keeps its model");
    let after = weights_of(&trained.model);
    assert_eq!(relative_change(&before, &after, "features."), 0.0, "frozen backbone must not change");
    assert!(relative_change(&before, &after, "classifier.") > 0.1);
    // The trainer built the manifest from its own settings.
    assert_eq!(trained.manifest.classes, names(&classes));
    assert_eq!(trained.manifest.head, HeadKind::Replace);
    assert_eq!(trained.manifest.input_size, 224);
    assert_eq!(trained.manifest.training.as_ref().map(|t| t.epochs), Some(8));
    // …and carries the evaluation the run showed.
    let exported = trained.manifest.metrics.as_ref().and_then(|m| m.evaluation.as_ref());
    assert_eq!(exported, Some(&eval), "the manifest's evaluation is the run's");

    // Export → load → identical predictions.
    let bundle = block_on(export_model(&trained)).unwrap();
    let zip = bundle.to_zip().unwrap();
    let loaded = ExportBundle::from_zip(&zip).unwrap().load(&device).unwrap();
    assert_eq!(loaded.manifest, trained.manifest);
    let labels: Vec<String> = serde_json::from_slice(bundle.file("labels.json").unwrap()).unwrap();
    assert_eq!(labels, names(&classes));
    let images: Vec<_> = photos(&classes, 32)
        .into_iter()
        .filter(|f| f.name.ends_with(".png"))
        .skip(30)
        .map(|f| graft_data::decode_image(&f.bytes).unwrap())
        .collect();
    let pre = loaded.manifest.preprocess();
    let a = block_on(predict(&trained.model, &pre, &images, &device)).unwrap();
    let b = block_on(predict(&loaded.model, &pre, &images, &device)).unwrap();
    for (pa, pb) in a.iter().zip(&b) {
        for (x, y) in pa.probabilities.iter().zip(&pb.probabilities) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
    let exported = WeightMap::from_safetensors_bytes(bundle.file("model.safetensors").unwrap().to_vec()).unwrap();
    assert_eq!(exported.shape("classifier.1.weight"), Some(&[5usize, 1280][..]));
    assert!(!exported.contains("classifier.2.weight"));
}

#[test]
fn warm_up_epochs_leave_the_backbone_bit_identical() {
    let device = Device::flex();
    let model = random_model(2, &device);
    let before = weights_of(&model);
    let cfg = TrainConfig { epochs: 1, warmup_epochs: 1, ..quick(Mode::Discriminative) };
    let (events, result) = run(Trainer::new(cfg, dataset(&["fruit", "mammal"], 6, 64), model, &device).unwrap());
    let phases: Vec<_> =
        events.iter().filter_map(|e| if let TrainEvent::Phase { phase } = e { Some(*phase) } else { None }).collect();
    assert_eq!(phases, vec![graft_train::PhaseKind::WarmUp]);
    let after = trained_weights(&result);
    assert_eq!(relative_change(&before, &after, "features."), 0.0, "warm-up must not touch the backbone");
    assert!(relative_change(&before, &after, "classifier.") > 0.0, "the head learns during warm-up");
}

#[test]
fn backbone_ratio_zero_keeps_it_and_point_one_moves_it() {
    let device = Device::flex();
    let change = |ratio: f64| {
        let model = random_model(2, &device);
        let before = weights_of(&model);
        let cfg = TrainConfig { epochs: 1, warmup_epochs: 0, backbone_ratio: ratio, ..quick(Mode::Discriminative) };
        let (events, result) = run(Trainer::new(cfg, dataset(&["fruit", "mammal"], 5, 64), model, &device).unwrap());
        assert!(events.iter().any(|e| matches!(e, TrainEvent::Phase { phase: graft_train::PhaseKind::FineTuning })));
        let after = trained_weights(&result);
        (relative_change(&before, &after, "features."), relative_change(&before, &after, "classifier."))
    };
    let (frozen_backbone, head0) = change(0.0);
    let (moved_backbone, head1) = change(0.1);
    println!(
        "ratio 0: backbone {frozen_backbone:e}, head {head0:e}; ratio 0.1: backbone {moved_backbone:e}, head {head1:e}"
    );
    assert_eq!(frozen_backbone, 0.0, "lr × 0 must leave the backbone as it was");
    assert!(moved_backbone > 1e-5, "lr × 0.1 must move the backbone ({moved_backbone})");
    assert!(head0 > 0.0 && head1 > 0.0);
}

#[test]
fn layer_groups_give_early_layers_smaller_updates() {
    let device = Device::flex();
    let per_layer = |layer_groups: bool| {
        let model = random_model(2, &device);
        let before = weights_of(&model);
        let cfg = TrainConfig { epochs: 1, warmup_epochs: 0, layer_groups, ..quick(Mode::Discriminative) };
        let (_, result) = run(Trainer::new(cfg, dataset(&["fruit", "mammal"], 5, 64), model, &device).unwrap());
        let after = trained_weights(&result);
        (relative_change(&before, &after, "features.1."), relative_change(&before, &after, "features.17."))
    };
    let (early_flat, late_flat) = per_layer(false);
    let (early_grouped, late_grouped) = per_layer(true);
    // features.1 learns at about a tenth of the backbone rate with groups, features.17 at ~0.9.
    let (early, late) = (early_grouped / early_flat, late_grouped / late_flat);
    println!("update with layer groups / without: features.1 {early:.3}, features.17 {late:.3}");
    assert!(early < 0.3, "early layers must learn slower with groups ({early})");
    assert!(late > 0.6, "late layers keep most of their rate ({late})");
}

#[test]
fn stacked_head_trains_only_its_new_layer() {
    let device = Device::flex();
    let spec = HeadSpec { kind: HeadKind::Stacked, num_classes: 2, seed: 5 };
    let model = ImageClassifier::from_pretrained(&RandomWeights::new(9), &spec, &device).unwrap();
    let before = weights_of(&model);
    let (_, result) =
        run(Trainer::new(quick(Mode::Frozen), dataset(&["bird", "flower"], 5, 64), model, &device).unwrap());
    let after = trained_weights(&result);
    assert_eq!(relative_change(&before, &after, "classifier.1."), 0.0, "the old ImageNet head stays frozen");
    assert!(relative_change(&before, &after, "classifier.2.") > 0.0, "the stacked layer learns");
    assert_eq!(result.trained.unwrap().manifest.head, HeadKind::Stacked);
}

#[test]
fn a_diverging_run_fails_at_once_with_a_clear_message_and_keeps_nothing() {
    let device = Device::flex();
    let cfg = TrainConfig { lr: 1e38, epochs: 3, ..quick(Mode::Frozen) };
    let (events, result) =
        run(Trainer::new(cfg, dataset(&["bird", "flower"], 6, 64), random_model(2, &device), &device).unwrap());
    let RunOutcome::Failed { reason, message } = &result.outcome else {
        panic!("expected Failed, got {:?}", result.outcome)
    };
    // Typed: the page tells a diverging run from a lost GPU by the reason, not by the text.
    assert_eq!(*reason, FailureReason::Diverged);
    println!("{message}");
    assert!(message.contains("became NaN") || message.contains("became infinite"), "{message}");
    assert!(message.contains("epoch 1 step") && message.contains("lower the learning rate"), "{message}");
    assert!(matches!(events.last(), Some(TrainEvent::Failed { .. })));
    assert!(!events.iter().any(|e| matches!(e, TrainEvent::Epoch(_))), "no epoch completes with a NaN loss");
    assert!(result.trained.is_none(), "a failed run leaves nothing to export");
}

#[test]
fn stop_keeps_the_model_of_the_last_completed_epoch_or_nothing() {
    let device = Device::flex();
    let data = dataset(&["bird", "flower"], 8, 64);
    let cfg = TrainConfig { epochs: 3, ..quick(Mode::Frozen) };

    // Stopped before any epoch completed, by a Stop the caller owns (a job's): no model.
    let stop = CancelToken::default();
    let mut trainer =
        Trainer::new(cfg.clone(), data.clone(), random_model(2, &device), &device).unwrap().with_cancel(stop.clone());
    assert!(matches!(block_on(trainer.next_event()), Some(TrainEvent::Loaded { .. })));
    stop.cancel();
    let (events, result) = run(trainer);
    assert_eq!(result.outcome, RunOutcome::Cancelled { completed_epochs: 0 });
    assert_eq!(events.last(), Some(&TrainEvent::Cancelled { completed_epochs: 0 }));
    assert!(result.trained.is_none());

    // Stopped in the middle of epoch 2: the kept model is the one epoch 1 was validated with.
    let mut trainer = Trainer::new(cfg, data.clone(), random_model(2, &device), &device).unwrap();
    let mut epochs = Vec::new();
    while let Some(event) = block_on(trainer.next_event()) {
        match event {
            TrainEvent::Epoch(m) => epochs.push(m),
            TrainEvent::Step(s) if s.epoch == 2 && s.step == 2 => trainer.cancel_token().cancel(),
            _ => {}
        }
    }
    let result = trainer.finish();
    assert_eq!(result.outcome, RunOutcome::Cancelled { completed_epochs: 1 });
    assert_eq!(epochs.len(), 1);
    let trained = result.trained.expect("one full epoch was trained");
    assert_eq!(trained.manifest.metrics.as_ref().map(|m| m.epochs.len()), Some(1));
    // Recompute epoch 1's validation loss with the kept model: it must be that epoch's model.
    let cfg = TrainConfig { epochs: 3, ..quick(Mode::Frozen) };
    let (_, val) = stratified_split(&data.labels(), 2, cfg.val_fraction, cfg.seed);
    let images: Vec<_> = val.iter().map(|&i| data.items[i].image.rgb().unwrap().into_owned()).collect();
    let probs = block_on(predict(&trained.model, &cfg.preprocess(), &images, &device)).unwrap();
    let loss: f32 = val.iter().zip(&probs).map(|(&i, p)| -p.probabilities[data.items[i].label].ln()).sum::<f32>()
        / val.len() as f32;
    let recorded = epochs[0].val_loss.unwrap();
    assert!((loss - recorded).abs() < 1e-3, "kept model's val loss {loss} vs epoch 1's {recorded}");
}

#[test]
fn seeded_runs_repeat() {
    let device = Device::flex();
    let cfg = TrainConfig { frozen_views: 2, augment: Some(Augment::default()), ..quick(Mode::Frozen) };
    let losses = |events: &[TrainEvent]| -> Vec<f32> {
        events.iter().filter_map(|e| if let TrainEvent::Step(s) = e { Some(s.loss) } else { None }).collect()
    };
    let go = || {
        run(Trainer::new(cfg.clone(), dataset(&["bird", "flower"], 6, 64), random_model(2, &device), &device).unwrap())
            .0
    };
    let (e1, e2) = (go(), go());
    assert!(!losses(&e1).is_empty());
    assert_eq!(losses(&e1), losses(&e2));
}

#[test]
fn bad_files_are_reported_and_the_rest_trains() {
    let device = Device::flex();
    let classes = ["fruit", "flower"];
    let mut files = photos(&classes, 5);
    let good = files[0].bytes.clone();
    files.push(LabelledBytes { label: 0, name: "fruit/truncated.png".into(), bytes: good[..good.len() / 4].to_vec() });
    files.push(LabelledBytes { label: 1, name: "flower/readme.png".into(), bytes: b"not a picture".to_vec() });
    files.push(LabelledBytes { label: 1, name: "flower/empty.jpg".into(), bytes: vec![] });
    let cfg = TrainConfig { epochs: 1, ..quick(Mode::Frozen) };
    let data = Dataset::from_labelled_bytes(names(&classes), files, cfg.preprocess());
    let (events, result) = run(Trainer::new(cfg, data, random_model(2, &device), &device).unwrap());
    let TrainEvent::Loaded { file_errors, train_counts, val_counts, .. } = &events[0] else {
        panic!("first event must be Loaded")
    };
    let bad: Vec<&str> = file_errors.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(bad, vec!["fruit/truncated.png", "flower/readme.png", "flower/empty.jpg"]);
    assert_eq!(train_counts.iter().sum::<usize>() + val_counts.iter().sum::<usize>(), 10);
    assert_eq!(result.outcome, RunOutcome::Done);
}

#[test]
fn unusable_datasets_fail_before_training_with_a_reason() {
    let device = Device::flex();
    let cfg = quick(Mode::Frozen);
    let err = |data: Dataset, classes: usize| {
        Trainer::new(cfg.clone(), data, random_model(classes, &device), &device).err().expect("refused").to_string()
    };
    // All images in one class.
    assert!(err(dataset(&["fruit"], 3, 64), 1).contains("at least 2 classes"));
    let mut two = dataset(&["fruit"], 3, 64);
    two.classes.push("empty".into());
    assert!(err(two, 2).contains("class `empty` has no usable images"));
    let mut dup = dataset(&["fruit", "bird"], 2, 64);
    dup.classes[1] = " Fruit ".into();
    assert!(err(dup, 2).contains("both called `Fruit`"));
    // Images prepared for another input size.
    let other = Dataset::from_labelled_bytes(
        names(&["bird", "flower"]),
        photos(&["bird", "flower"], 2),
        TrainConfig::default().preprocess(),
    );
    assert!(err(other, 2).contains("prepared for a 224px input"));
    // A head sized for other classes.
    let e = Trainer::new(cfg.clone(), dataset(&["bird", "flower"], 2, 64), random_model(3, &device), &device)
        .err()
        .unwrap();
    assert!(e.to_string().contains("3 outputs but the data has 2 classes"), "{e}");
}

#[test]
fn tiny_classes_train_with_warnings_instead_of_panicking() {
    let device = Device::flex();
    // One image per class: nothing can be held out.
    let (events, result) =
        run(Trainer::new(quick(Mode::Frozen), dataset(&["bird", "flower"], 1, 64), random_model(2, &device), &device)
            .unwrap());
    assert_eq!(result.outcome, RunOutcome::Done);
    let warnings: Vec<&str> = events
        .iter()
        .filter_map(|e| if let TrainEvent::Warning { message } = e { Some(message.as_str()) } else { None })
        .collect();
    assert!(warnings.iter().any(|w| w.contains("no validation images")), "{warnings:?}");
    assert!(result.summary.evaluation.is_none());

    // A class too small to hold one image back, next to a larger one.
    let mut files = photos(&["bird"], 1);
    files.extend(photos(&["flower"], 6).into_iter().map(|f| LabelledBytes { label: 1, ..f }));
    let cfg = TrainConfig { mode: Mode::Discriminative, warmup_epochs: 1, ..quick(Mode::Frozen) };
    let data = Dataset::from_labelled_bytes(names(&["bird", "flower"]), files, cfg.preprocess());
    let (events, result) = run(Trainer::new(cfg, data, random_model(2, &device), &device).unwrap());
    assert_eq!(result.outcome, RunOutcome::Done);
    assert!(events.iter().any(
        |e| matches!(e, TrainEvent::Warning { message } if message.contains("class `bird` has no validation images"))
    ));
    let eval = result.summary.evaluation.expect("the larger class is validated");
    assert_eq!(eval.per_class_accuracy[0], None);
}
