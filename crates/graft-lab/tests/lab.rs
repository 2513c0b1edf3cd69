//! The lab's computations on real photos and the real pretrained network: each test fails if the
//! computation is wrong (a frozen run must forget nothing, a planted duplicate must be found…).

#![allow(clippy::cast_possible_truncation)] // test fixtures build small synthetic values

use std::path::PathBuf;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::{decode_image, Dataset, LabelledBytes};
use graft_lab::{
    check_data, lr_find_for_run, lr_find_head, pretrained_view, run_compare, CheckItem, Finding, Lesson, LrSweep,
};
use graft_model::WeightMap;
use graft_train::{CancelToken, Evaluation, TrainConfig, ValItem};
use image::{Rgb, RgbImage};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pretrained() -> WeightMap {
    let path = repo().join("static/weights/mobilenet_v2.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    WeightMap::from_safetensors_bytes(bytes).unwrap()
}

fn photos(class: &str, label: usize, skip: usize, n: usize) -> Vec<LabelledBytes> {
    let dir = repo().join("data/photos").join(class);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-photos.sh", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("cartoon"))
        .collect();
    files.sort();
    files
        .into_iter()
        .skip(skip)
        .take(n)
        .map(|f| LabelledBytes {
            label,
            name: format!("{class}/{}", f.file_name().unwrap().to_string_lossy()),
            bytes: std::fs::read(&f).unwrap(),
        })
        .collect()
}

fn dataset(classes: &[&str], per_class: usize, input: u32) -> Dataset {
    let files = classes.iter().enumerate().flat_map(|(label, c)| photos(c, label, 0, per_class)).collect();
    let cfg = TrainConfig { input_size: input, ..TrainConfig::default() };
    Dataset::from_labelled_bytes(classes.iter().map(|c| c.to_string()).collect(), files, cfg.preprocess())
}

#[test]
fn compare_frozen_forgets_nothing_and_one_rate_moves_everything() {
    let device = Device::flex();
    let data = dataset(&["bird", "flower"], 8, 96);
    let cfg =
        TrainConfig { epochs: 2, batch_size: 4, input_size: 96, frozen_views: 1, lr: 3e-3, ..TrainConfig::default() };
    let rows =
        block_on(run_compare(&data, &pretrained(), &cfg, &device, &CancelToken::default(), |_| async {})).unwrap();
    assert_eq!(rows.len(), 4);
    for (row, model) in &rows {
        println!(
            "{:<45} acc {:?} ImageNet agreement {:?} change features.0 {:.4} features.18 {:.4}",
            row.label, row.val_accuracy, row.imagenet_agreement, row.layer_change[0], row.layer_change[18]
        );
        assert!(model.is_some(), "{} keeps a model", row.label);
        assert_eq!(row.layer_change.len(), 19);
    }
    let row = |lesson: Lesson| &rows.iter().find(|(r, _)| r.lesson == lesson).unwrap().0;
    for frozen in [Lesson::FrozenReplace, Lesson::Stacked] {
        assert_eq!(row(frozen).imagenet_agreement, Some(1.0), "a frozen backbone forgets nothing");
        assert!(row(frozen).layer_change.iter().all(|&c| c == 0.0), "a frozen backbone does not move");
    }
    let one_rate = row(Lesson::OneRate);
    let disc = row(Lesson::Discriminative);
    assert!(one_rate.layer_change.iter().all(|&c| c > 0.0), "one rate moves every layer");
    assert!(one_rate.imagenet_agreement.unwrap() < 1.0, "full-rate fine-tuning changes what the backbone knows");
    // The warmed-up backbone at a tenth of the rate moves less than at the full rate.
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&disc.layer_change) < mean(&one_rate.layer_change));
    assert!(disc.imagenet_agreement.unwrap() >= one_rate.imagenet_agreement.unwrap());
}

fn check_items<'a>(data: &'a Dataset, view: &'a graft_lab::BackboneView, validation: &[usize]) -> Vec<CheckItem<'a>> {
    data.items
        .iter()
        .enumerate()
        .map(|(i, item)| CheckItem {
            name: &item.name,
            label: item.label,
            in_validation: validation.contains(&i),
            features: view.row(i),
            imagenet_confidence: view.confidence[i],
        })
        .collect()
}

#[test]
fn a_planted_duplicate_across_the_split_and_a_planted_mislabel_are_found() {
    let device = Device::flex();
    let mut data = dataset(&["bird", "fruit", "flower"], 10, 224);
    // A copy of bird 0, re-encoded as JPEG and flipped (what a duplicate usually looks like).
    let original = decode_image(&photos("bird", 0, 0, 1)[0].bytes).unwrap();
    let mut copy = image::imageops::flip_horizontal(&original);
    copy = image::imageops::resize(
        &copy,
        copy.width() * 9 / 10,
        copy.height() * 9 / 10,
        image::imageops::FilterType::Triangle,
    );
    data.add_decoded("bird/copy-of-first.jpg".into(), 0, &copy).unwrap();
    // A bird photo filed under fruit, with the name of a fruit picture already there (names
    // repeat: webcam frames): the finding must point at the planted one.
    let twin_name = data.items.iter().find(|i| i.label == 1).unwrap().name.clone();
    for f in photos("bird", 1, 12, 1) {
        data.add(LabelledBytes { name: twin_name.clone(), ..f }).unwrap();
    }
    let planted = data.items.len() - 1;
    let view = block_on(pretrained_view(&pretrained(), &data, &device, |_, _| async {})).unwrap();
    let copy_index = data.items.iter().position(|i| i.name == "bird/copy-of-first.jpg").unwrap();
    // The original is in validation, its copy in training.
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    let others = (1..copy_index).map(|j| cosine(view.row(0), view.row(j))).fold(0.0f32, f32::max);
    let copy_similarity = cosine(view.row(0), view.row(copy_index));
    println!("similarity of the copy {copy_similarity:.3}; of the closest other picture {others:.3}");
    assert!(copy_similarity > others, "the flipped, resized copy is the original's nearest picture");
    let findings = check_data(&data.classes, &check_items(&data, &view, &[0]));
    for f in &findings {
        println!("{}", f.describe());
    }
    assert!(
        findings.iter().any(|f| matches!(f, Finding::NearDuplicate { a, b, across_split: true, pictures, .. }
            if a == &data.items[0].name && b == &data.items[copy_index].name && pictures == &[0, copy_index])),
        "the planted duplicate across the split must be found"
    );
    let first_duplicate = findings.iter().find(|f| matches!(f, Finding::NearDuplicate { .. }));
    assert!(
        matches!(first_duplicate, Some(Finding::NearDuplicate { across_split: true, .. })),
        "pairs across the split come first"
    );
    assert!(
        findings.iter().any(|f| matches!(f, Finding::LooksLikeOtherClass { image, looks_like, pictures, .. }
            if image == &twin_name && looks_like == "bird" && pictures == &[planted])),
        "the bird filed under fruit must be flagged, by its position and not its (repeated) name"
    );
}

#[test]
fn unfamiliar_pictures_and_small_classes_are_reported() {
    let device = Device::flex();
    let cfg = TrainConfig::default();
    let mut data = Dataset::new(vec!["noise".into(), "bird".into()], cfg.preprocess());
    let mut seed = 1u32;
    for i in 0..6 {
        let noise = RgbImage::from_fn(256, 256, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            Rgb([(seed >> 24) as u8, (seed >> 16) as u8, (seed >> 8) as u8])
        });
        data.add_decoded(format!("noise/{i}.png"), 0, &noise).unwrap();
    }
    for f in photos("bird", 1, 0, 12) {
        data.add(f).unwrap();
    }
    let view = block_on(pretrained_view(&pretrained(), &data, &device, |_, _| async {})).unwrap();
    let findings = check_data(&data.classes, &check_items(&data, &view, &[]));
    assert!(findings.iter().any(|f| matches!(f, Finding::FewImages { class, count: 6 } if class == "noise")));
    let unfamiliar =
        findings.iter().find_map(|f| if let Finding::Unfamiliar { images, .. } = f { Some(images) } else { None });
    let unfamiliar = unfamiliar.expect("noise is unlike ImageNet");
    println!("unfamiliar: {unfamiliar:?}");
    assert!(unfamiliar.iter().filter(|n| n.starts_with("noise/")).count() >= 4, "{unfamiliar:?}");
    assert!(unfamiliar.iter().filter(|n| n.starts_with("bird/")).count() <= 3, "{unfamiliar:?}");
}

/// The discriminative sweep steps each backbone layer at the rate the run would give it: with
/// layer groups the early layers learn slower, so the curve after the first update differs.
#[test]
fn the_discriminative_lr_finder_sweeps_the_trainings_layer_rates() {
    let device = Device::flex();
    let data = dataset(&["bird", "flower"], 4, 96);
    let sweep = |layer_groups: bool| {
        let cfg = TrainConfig {
            mode: graft_train::Mode::Discriminative,
            batch_size: 4,
            input_size: 96,
            layer_groups,
            ..TrainConfig::default()
        };
        block_on(lr_find_for_run(&pretrained(), &data, &cfg, Some(3), &device, |_, _, _| async {}))
            .expect("the sweep runs")
            .losses
    };
    let (flat, grouped) = (sweep(false), sweep(true));
    assert_eq!(flat.len(), 3);
    assert_eq!(flat[0], grouped[0], "the first loss comes before any update");
    assert_ne!(flat[1..], grouped[1..], "layer groups must reach the sweep's update");
}

#[test]
fn the_lr_finder_curve_falls_then_rises_on_real_photos() {
    let device = Device::flex();
    let data = dataset(&["bird", "fruit", "flower", "mammal"], 12, 224);
    let view = block_on(pretrained_view(&pretrained(), &data, &device, |_, _| async {})).unwrap();
    let result =
        block_on(lr_find_head(&view.features, &data.labels(), 4, LrSweep::default(), &device, |_, _| async {}))
            .unwrap();
    let min = result.smoothed.iter().copied().fold(f32::INFINITY, f32::min);
    let last = *result.smoothed.last().unwrap();
    let first = result.smoothed[0];
    println!(
        "{} steps, smoothed loss {first:.3} → min {min:.3} → last {last:.3}; suggestion {:?}",
        result.lrs.len(),
        result.suggestion
    );
    assert!(min < first * 0.7, "the loss must fall in the middle of the sweep");
    assert!(result.diverged || last > min * 1.5, "the loss must rise at the high end");
    let lr = result.suggestion.expect("a suggestion");
    assert!((1e-5..0.5).contains(&lr), "suggested {lr}");
}

#[test]
fn interpretation_lists_cells_top_losses_and_confused_pairs() {
    let item = |name: &str, label, predicted, confidence, loss| ValItem {
        name: name.into(),
        index: 0,
        label,
        predicted,
        confidence,
        true_probability: 1.0 - confidence,
        loss,
    };
    let items = vec![
        item("a", 0, 1, 0.9, 2.3),
        item("b", 0, 1, 0.6, 0.9),
        item("c", 1, 1, 0.8, 0.2),
        item("d", 1, 0, 0.7, 1.2),
        item("e", 0, 0, 0.95, 0.05),
    ];
    let eval = Evaluation {
        loss: 0.9,
        accuracy: 0.4,
        confusion: vec![vec![1, 2], vec![1, 1]],
        per_class_accuracy: vec![Some(1.0 / 3.0), Some(0.5)],
        items,
    };
    let names = |v: Vec<&ValItem>| v.into_iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(graft_lab::cell_images(&eval, 0, 1)), ["a", "b"]);
    assert_eq!(names(graft_lab::top_losses(&eval, 2)), ["a", "d"]);
    let pairs = graft_lab::most_confused(&eval, 1);
    let classes = vec!["tool".to_string(), "monument".to_string()];
    assert_eq!(pairs[0].describe(&classes), "2 pictures of `tool` were taken for `monument`");
    assert_eq!(pairs[1].describe(&classes), "1 picture of `monument` was taken for `tool`");
}

#[test]
fn grad_cam_points_at_the_object() {
    let device = Device::flex();
    let model = graft_lab::pretrained_imagenet(&pretrained(), &device).unwrap();
    // A bird on the left half of a white picture.
    let bird = decode_image(&photos("bird", 0, 3, 1)[0].bytes).unwrap();
    let bird = image::imageops::resize(&bird, 112, 224, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(224, 224, Rgb([255, 255, 255]));
    image::imageops::overlay(&mut canvas, &bird, 0, 0);
    let pre = TrainConfig::default().preprocess();
    let s = block_on(graft_lab::grad_cam(&model, &canvas, &pre, None, &device)).unwrap();
    assert_eq!(s.side, 7);
    assert_eq!(s.heat.len(), 49);
    let (mut left, mut right) = (0.0, 0.0);
    for (i, h) in s.heat.iter().enumerate() {
        if i % 7 < 3 {
            left += h;
        } else if i % 7 > 3 {
            right += h;
        }
    }
    println!("class {} p {:.2}; heat left {left:.2} right {right:.2}", s.class, s.probability);
    assert!(left > 2.0 * right, "the heat must sit on the bird (left {left}, right {right})");
}

#[test]
fn an_unchanged_backbone_knows_everything_it_knew() {
    let device = Device::flex();
    let data = dataset(&["bird", "fruit"], 3, 224);
    let weights = pretrained();
    let k = block_on(graft_lab::backbone_knowledge(&weights, &weights, &data, &device, |_, _, _| async {})).unwrap();
    assert_eq!(k.imagenet_agreement, 1.0, "the same weights give the same ImageNet answers");
    assert_eq!(k.layer_change.len(), 19, "one figure per features.N block");
    assert!(k.layer_change.iter().all(|&c| c == 0.0), "{:?}", k.layer_change);
}
