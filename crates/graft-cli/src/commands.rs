//! The CLI commands. Each is a thin shell over the engine crates.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::{decode_image, Augment, Dataset, Preprocess};
use graft_model::{
    imagenet_labels, imagenet_rows_for, HeadKind, HeadSpec, ImageClassifier, WeightMap, IMAGENET_CLASSES,
};
use graft_train::{export_model, load_exported, predict as run_predict, stored_zip, Manifest, TrainConfig, Trainer};

use crate::args::Args;
use crate::backend::{device, load_pretrained, peak_rss_mib, weights_path};
use crate::progress::Progress;

pub fn convert(args: &Args) -> Result<(), String> {
    let [pth, out] = args.positional.as_slice() else {
        return Err("usage: graft convert PTH OUT.safetensors".into());
    };
    let weights = WeightMap::from_pytorch_file(Path::new(pth)).map_err(|e| e.to_string())?;
    // Check the checkpoint really is a complete MobileNetV2 before writing anything.
    let spec = HeadSpec {
        kind: HeadKind::KeepImagenet { rows: (0..IMAGENET_CLASSES).collect() },
        num_classes: IMAGENET_CLASSES,
        seed: 0,
    };
    ImageClassifier::from_pretrained(&weights, &spec, &Device::flex()).map_err(|e| {
        let mut names: Vec<&str> = weights.names().collect();
        names.sort_unstable();
        format!(
            "{e} (the checkpoint has {} tensors: {} …)",
            names.len(),
            names.iter().take(4).copied().collect::<Vec<_>>().join(", ")
        )
    })?;
    let bytes = weights.to_safetensors_bytes(None).map_err(|e| e.to_string())?;
    if let Some(dir) = Path::new(out).parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, &bytes).map_err(|e| e.to_string())?;
    println!("wrote {out}: {} tensors, {:.1} MB", weights.len(), bytes.len() as f64 / 1e6);
    Ok(())
}

fn train_config(args: &Args) -> Result<TrainConfig, String> {
    let d = TrainConfig::default();
    Ok(TrainConfig {
        mode: args.get("mode", d.mode)?,
        epochs: args.get("epochs", d.epochs)?,
        lr: args.get("lr", d.lr)?,
        backbone_ratio: args.get("ratio", d.backbone_ratio)?,
        layer_groups: args.switch("layer-groups"),
        warmup_epochs: args.get("warmup", d.warmup_epochs)?,
        batch_size: args.get("batch", d.batch_size)?,
        label_smoothing: args.get("smoothing", d.label_smoothing)?,
        val_fraction: args.get("val", d.val_fraction)?,
        augment: (!args.switch("no-augment")).then(Augment::default),
        frozen_views: args.get("views", d.frozen_views)?,
        input_size: args.get("input-size", d.input_size)?,
        seed: args.get("seed", d.seed)?,
        ..d
    })
}

fn head_kind(name: &str, classes: &[String]) -> Result<HeadKind, String> {
    match name {
        "replace" => Ok(HeadKind::Replace),
        "stacked" => Ok(HeadKind::Stacked),
        "keep" => imagenet_rows_for(classes)
            .map(|rows| HeadKind::KeepImagenet { rows })
            .ok_or_else(|| "--head keep needs every class folder to be named after an ImageNet class".into()),
        other => Err(format!("unknown head `{other}` (replace | stacked | keep)")),
    }
}

pub fn train(args: &Args) -> Result<(), String> {
    let [data_dir] = args.positional.as_slice() else {
        return Err("usage: graft train DATA_DIR --out DIR [options]".into());
    };
    let out = PathBuf::from(args.string("out").ok_or("--out DIR is required")?);
    let mut cfg = train_config(args)?;
    let dev = device(&args.string("backend").unwrap_or_else(|| "flex".into()))?;
    let pretrained = load_pretrained(&weights_path(args.string("weights")))?;
    let preprocess = Preprocess::imagenet(cfg.input_size);
    let dataset = Dataset::from_folder(Path::new(data_dir), &preprocess).map_err(|e| e.to_string())?;
    cfg.head = head_kind(&args.string("head").unwrap_or_else(|| "replace".into()), &dataset.classes)?;
    let model = match args.string("from") {
        // Further training of an exported model: same classes, same head.
        Some(dir) => {
            let (model, manifest) = load_model_dir(Path::new(&dir), &dev)?;
            if manifest.classes != dataset.classes {
                return Err(format!(
                    "--from model has classes {:?}, the data has {:?}",
                    manifest.classes, dataset.classes
                ));
            }
            cfg.head = manifest.head;
            model
        }
        None => {
            let spec = HeadSpec { kind: cfg.head.clone(), num_classes: dataset.classes.len(), seed: cfg.seed };
            ImageClassifier::from_pretrained(&pretrained, &spec, &dev).map_err(|e| e.to_string())?
        }
    };
    let classes = dataset.classes.clone();
    let mut trainer = Trainer::new(cfg.clone(), dataset, model, &dev).map_err(|e| e.to_string())?;

    let events = trainer.events();
    let mut progress = Progress::new(args.switch("json"));
    block_on(trainer.run(|| {
        while let Ok(event) = events.try_recv() {
            progress.show(&event);
        }
        async {}
    }));
    while let Ok(event) = events.try_recv() {
        progress.show(&event);
    }
    if !trainer.is_finished() {
        return Err("training did not finish".into());
    }

    let manifest = Manifest::new(classes, cfg.head.clone(), &preprocess, Some(cfg), Some(trainer.summary()));
    let bundle = block_on(export_model(&trainer.model(), &manifest)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    for (name, bytes) in &bundle.files {
        std::fs::write(out.join(name), bytes).map_err(|e| e.to_string())?;
    }
    println!("exported to {}", out.display());
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory {mib:.0} MiB");
    }
    Ok(())
}

pub fn predict(args: &Args) -> Result<(), String> {
    let dev = device(&args.string("backend").unwrap_or_else(|| "flex".into()))?;
    let top: usize = args.get("top", 3)?;
    let (model, preprocess, classes, images) = if args.switch("imagenet") {
        let pretrained = load_pretrained(&weights_path(args.string("weights")))?;
        let spec = HeadSpec {
            kind: HeadKind::KeepImagenet { rows: (0..IMAGENET_CLASSES).collect() },
            num_classes: IMAGENET_CLASSES,
            seed: 0,
        };
        let model = ImageClassifier::from_pretrained(&pretrained, &spec, &dev).map_err(|e| e.to_string())?;
        let classes = imagenet_labels().into_iter().map(String::from).collect();
        (model, Preprocess::imagenet(224), classes, args.positional.clone())
    } else {
        let (dir, images) = args.positional.split_first().ok_or("usage: graft predict MODEL_DIR IMAGE...")?;
        let (model, manifest) = load_model_dir(Path::new(dir), &dev)?;
        (model, manifest.preprocess(), manifest.classes, images.to_vec())
    };
    for path in &images {
        let decoded =
            std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| decode_image(&b).map_err(|e| e.to_string()));
        match decoded {
            Err(e) => println!("{path}: cannot use: {e}"),
            Ok(image) => {
                let preds = block_on(run_predict(&model, &preprocess, &[image], &dev))?;
                let ranked: Vec<String> =
                    preds[0].top_k(top).iter().map(|(c, p)| format!("{} {:.3}", classes[*c], p)).collect();
                println!("{path}: {}", ranked.join(", "));
            }
        }
    }
    Ok(())
}

/// Loads an exported model directory (`model.safetensors` + `manifest.json`).
fn load_model_dir(dir: &Path, dev: &Device) -> Result<(ImageClassifier, Manifest), String> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()));
    load_exported(read("model.safetensors")?, &read("manifest.json")?, dev).map_err(|e| e.to_string())
}

pub fn export(args: &Args) -> Result<(), String> {
    let [dir, out] = args.positional.as_slice() else {
        return Err("usage: graft export MODEL_DIR OUT.zip".into());
    };
    let files = ["model.safetensors", "labels.json", "manifest.json"]
        .iter()
        .map(|name| {
            std::fs::read(Path::new(dir).join(name)).map(|b| (name.to_string(), b)).map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Load once to refuse packing a broken model.
    load_exported(files[0].1.clone(), &files[2].1, &Device::flex()).map_err(|e| e.to_string())?;
    std::fs::write(out, stored_zip(&files)).map_err(|e| e.to_string())?;
    println!("wrote {out}");
    Ok(())
}

pub fn bench(args: &Args) -> Result<(), String> {
    let backend = args.string("backend").unwrap_or_else(|| "flex".into());
    let dev = device(&backend)?;
    let pretrained = load_pretrained(&weights_path(args.string("weights")))?;
    let batches: Vec<usize> = args
        .string("batches")
        .unwrap_or_else(|| "16,32".into())
        .split(',')
        .map(|b| b.trim().parse().map_err(|e| format!("--batches: {e}")))
        .collect::<Result<_, _>>()?;
    let iters = args.get("iters", 3)?;
    let input = args.get("input-size", 224)?;
    let report = block_on(graft_train::bench(&pretrained, &dev, &batches, iters, input))?;
    if args.switch("json") {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    println!("backend {backend}, input {input}x{input}, {iters} timed batches each");
    println!("{:<38} {:>5} {:>10} {:>10}", "what", "batch", "img/s", "ms/batch");
    for r in &report.rows {
        println!("{:<38} {:>5} {:>10.1} {:>10.1}", r.what, r.batch, r.images_per_sec, r.ms_per_batch);
    }
    for &b in &batches {
        let get = |what: &str| {
            report.rows.iter().find(|r| r.batch == b && r.what.starts_with(what)).map(|r| r.images_per_sec)
        };
        if let (Some(f), Some(d)) = (get("frozen: backbone"), get("discriminative")) {
            println!("batch {b}: frozen feature extraction is {:.1}x the images/s of a full fine-tune step", f / d);
        }
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak process memory {mib:.0} MiB");
    }
    if let Some(bytes) = report.rows.iter().filter_map(|r| r.device_bytes_reserved).max() {
        println!("peak device pool reserved {:.0} MiB", bytes as f64 / 1048576.0);
    }
    Ok(())
}
