//! End-to-end engine tests on the flex CPU backend with the real pretrained backbone and real
//! photos (scripts/setup.sh converts the weights, scripts/fetch-photos.sh fetches the photos).

use std::path::PathBuf;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::{Augment, Dataset, LabelledBytes, Preprocess};
use graft_model::{HeadKind, HeadSpec, ImageClassifier, WeightMap};
use graft_train::{export_model, load_exported, predict, Manifest, Mode, TrainConfig, TrainEvent, Trainer};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pretrained() -> WeightMap {
    let path = repo().join("static/weights/mobilenet_v2.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    WeightMap::from_safetensors_bytes(bytes).unwrap()
}

/// Real photos: up to `per_class` files from each of `classes` (sorted, so runs are stable).
fn photos(classes: &[&str], per_class: usize) -> Vec<(usize, String, Vec<u8>)> {
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
            out.push((
                label,
                format!("{class}/{}", f.file_name().unwrap().to_string_lossy()),
                std::fs::read(&f).unwrap(),
            ));
        }
    }
    out
}

fn dataset(classes: &[&str], per_class: usize, input: u32) -> Dataset {
    let files = photos(classes, per_class)
        .into_iter()
        .map(|(label, name, bytes)| LabelledBytes { label, name, bytes })
        .collect();
    Dataset::from_labelled_bytes(classes.iter().map(|c| c.to_string()).collect(), files, &Preprocess::imagenet(input))
}

fn new_model(classes: usize, device: &Device) -> ImageClassifier {
    ImageClassifier::from_pretrained(
        &pretrained(),
        &HeadSpec { kind: HeadKind::Replace, num_classes: classes, seed: 3 },
        device,
    )
    .unwrap()
}

fn run(trainer: &mut Trainer) -> Vec<TrainEvent> {
    let events = trainer.events();
    block_on(trainer.run(|| async {}));
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

fn weights_of(model: &ImageClassifier) -> WeightMap {
    block_on(model.to_weight_map()).unwrap()
}

/// ‖after − before‖ / ‖before‖ over the tensors whose names start with `prefix`.
fn relative_change(before: &WeightMap, after: &WeightMap, prefix: &str) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for name in before.names().filter(|n| n.starts_with(prefix) && !n.contains("running_")) {
        let shape = before.shape(name).unwrap();
        for (a, b) in before.values(name, shape).unwrap().iter().zip(after.values(name, shape).unwrap()) {
            diff += f64::from(a - b).powi(2);
            norm += f64::from(*a).powi(2);
        }
    }
    (diff / norm).sqrt()
}

#[test]
fn frozen_training_on_real_photos_beats_chance_and_leaves_backbone_untouched() {
    let device = Device::flex();
    let classes = ["bird", "flower", "fruit", "mammal", "vegetable"];
    let data = dataset(&classes, 30, 224);
    let model = new_model(classes.len(), &device);
    let before = weights_of(&model);
    let cfg = TrainConfig { mode: Mode::Frozen, epochs: 8, frozen_views: 2, lr: 3e-3, ..TrainConfig::default() };
    let mut trainer = Trainer::new(cfg.clone(), data, model, &device).unwrap();
    let events = run(&mut trainer);

    let summary = match events.last() {
        Some(TrainEvent::Done(s)) => s.clone(),
        other => panic!("run did not finish: {other:?}"),
    };
    let eval = summary.evaluation.clone().expect("validation ran");
    println!(
        "frozen: val accuracy {:.3} on {} images, {:.1} img/s",
        eval.accuracy,
        eval.confusion.iter().flatten().sum::<u32>(),
        summary.images_per_sec
    );
    assert!(eval.accuracy >= 0.6, "validation accuracy {} (chance 0.2)", eval.accuracy);
    assert_eq!(eval.confusion.len(), 5);
    assert!(events.iter().any(|e| matches!(e, TrainEvent::Extract { .. })));
    assert_eq!(events.iter().filter(|e| matches!(e, TrainEvent::Epoch(_))).count(), 8);

    let trained = trainer.model();
    let after = weights_of(&trained);
    assert_eq!(relative_change(&before, &after, "features."), 0.0, "frozen backbone must not change");
    assert!(relative_change(&before, &after, "classifier.") > 0.1);

    // Export → load → identical predictions.
    let manifest = Manifest::new(
        trainer.classes().to_vec(),
        HeadKind::Replace,
        &Preprocess::imagenet(224),
        Some(cfg),
        Some(summary),
    );
    let bundle = block_on(export_model(&trained, &manifest)).unwrap();
    let (loaded, loaded_manifest) = load_exported(
        bundle.file("model.safetensors").unwrap().to_vec(),
        bundle.file("manifest.json").unwrap(),
        &device,
    )
    .unwrap();
    assert_eq!(loaded_manifest.classes, classes.map(String::from).to_vec());
    let labels: Vec<String> = serde_json::from_slice(bundle.file("labels.json").unwrap()).unwrap();
    assert_eq!(labels, loaded_manifest.classes);
    let images: Vec<_> =
        photos(&classes, 32).into_iter().skip(30).map(|(_, _, b)| graft_data::decode_image(&b).unwrap()).collect();
    let pre = loaded_manifest.preprocess();
    let a = block_on(predict(&trained, &pre, &images, &device)).unwrap();
    let b = block_on(predict(&loaded, &pre, &images, &device)).unwrap();
    for (pa, pb) in a.iter().zip(&b) {
        for (x, y) in pa.probabilities.iter().zip(&pb.probabilities) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
    // The exported head has torchvision's name and the user's class count.
    let exported = WeightMap::from_safetensors_bytes(bundle.file("model.safetensors").unwrap().to_vec()).unwrap();
    assert_eq!(exported.shape("classifier.1.weight"), Some(&[5usize, 1280][..]));
    assert!(!exported.contains("classifier.2.weight"));
}

#[test]
fn discriminative_training_moves_backbone_less_than_head() {
    let device = Device::flex();
    let classes = ["fruit", "mammal"];
    let data = dataset(&classes, 6, 96);
    let model = new_model(2, &device);
    let before = weights_of(&model);
    let cfg = TrainConfig {
        mode: Mode::Discriminative,
        epochs: 2,
        warmup_epochs: 1,
        batch_size: 4,
        input_size: 96,
        lr: 1e-3,
        backbone_ratio: 0.1,
        layer_groups: true,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, data, model, &device).unwrap();
    let events = run(&mut trainer);
    assert!(matches!(events.last(), Some(TrainEvent::Done(_))), "{:?}", events.last());
    let phases: Vec<_> =
        events.iter().filter_map(|e| if let TrainEvent::Phase { phase } = e { Some(*phase) } else { None }).collect();
    assert_eq!(phases, vec![graft_train::PhaseKind::WarmUp, graft_train::PhaseKind::FineTuning]);

    let after = weights_of(&trainer.model());
    let backbone = relative_change(&before, &after, "features.");
    let head = relative_change(&before, &after, "classifier.");
    println!("relative change: backbone {backbone:.2e}, head {head:.2e}");
    assert!(backbone > 0.0, "backbone must learn after the warm-up");
    assert!(backbone < head, "backbone ({backbone}) must move less than the head ({head})");
    // BatchNorm statistics stay the ImageNet ones (inference-mode BN, documented choice).
    let shape = before.shape("features.5.conv.1.1.running_mean").unwrap();
    assert_eq!(
        before.values("features.5.conv.1.1.running_mean", shape).unwrap(),
        after.values("features.5.conv.1.1.running_mean", shape).unwrap()
    );
}

#[test]
fn same_seed_same_run_and_cancel_stops() {
    let device = Device::flex();
    let classes = ["bird", "flower"];
    let cfg = TrainConfig {
        epochs: 2,
        input_size: 64,
        batch_size: 4,
        frozen_views: 2,
        augment: Some(Augment::default()),
        ..TrainConfig::default()
    };
    let losses = |events: &[TrainEvent]| -> Vec<f32> {
        events.iter().filter_map(|e| if let TrainEvent::Step(s) = e { Some(s.loss) } else { None }).collect()
    };
    let mut t1 = Trainer::new(cfg.clone(), dataset(&classes, 6, 64), new_model(2, &device), &device).unwrap();
    let mut t2 = Trainer::new(cfg.clone(), dataset(&classes, 6, 64), new_model(2, &device), &device).unwrap();
    let (e1, e2) = (run(&mut t1), run(&mut t2));
    assert!(!losses(&e1).is_empty());
    assert_eq!(losses(&e1), losses(&e2));

    let mut t3 = Trainer::new(cfg, dataset(&classes, 6, 64), new_model(2, &device), &device).unwrap();
    let events = t3.events();
    assert!(block_on(t3.step()));
    t3.cancel_token().cancel();
    assert!(!block_on(t3.step()));
    let last = std::iter::from_fn(|| events.try_recv().ok()).last();
    assert_eq!(last, Some(TrainEvent::Cancelled));
}

#[test]
fn bad_files_are_reported_and_the_rest_trains() {
    let device = Device::flex();
    let classes = ["fruit", "flower"];
    let mut files: Vec<LabelledBytes> =
        photos(&classes, 5).into_iter().map(|(label, name, bytes)| LabelledBytes { label, name, bytes }).collect();
    let good = files[0].bytes.clone();
    files.push(LabelledBytes { label: 0, name: "fruit/truncated.png".into(), bytes: good[..good.len() / 4].to_vec() });
    files.push(LabelledBytes { label: 1, name: "flower/readme.png".into(), bytes: b"not a picture".to_vec() });
    files.push(LabelledBytes { label: 1, name: "flower/empty.jpg".into(), bytes: vec![] });
    let data = Dataset::from_labelled_bytes(classes.map(String::from).to_vec(), files, &Preprocess::imagenet(64));
    let cfg = TrainConfig { epochs: 1, input_size: 64, ..TrainConfig::default() };
    let mut trainer = Trainer::new(cfg, data, new_model(2, &device), &device).unwrap();
    let events = run(&mut trainer);
    let TrainEvent::Loaded { file_errors, train_counts, val_counts, .. } = &events[0] else {
        panic!("first event must be Loaded")
    };
    let names: Vec<&str> = file_errors.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(names, vec!["fruit/truncated.png", "flower/readme.png", "flower/empty.jpg"]);
    assert_eq!(train_counts.iter().sum::<usize>() + val_counts.iter().sum::<usize>(), 10);
    assert!(matches!(events.last(), Some(TrainEvent::Done(_))));
}

#[test]
fn too_few_classes_or_an_empty_class_fail_before_training() {
    let device = Device::flex();
    let one = dataset(&["fruit"], 3, 64);
    let err = Trainer::new(TrainConfig::default(), one, new_model(1, &device), &device).err().unwrap();
    assert!(err.to_string().contains("at least 2 classes"), "{err}");
    let mut two = dataset(&["fruit"], 3, 64);
    two.classes.push("empty".into());
    let err = Trainer::new(TrainConfig::default(), two, new_model(2, &device), &device).err().unwrap();
    assert!(err.to_string().contains("class `empty` has no usable images"), "{err}");
}
