//! The CLI commands. Each is a thin shell over the engine crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::{decode_image_for_side, write_zip};
use graft_model::{imagenet_labels, HeadKind, HeadSpec, ImageClassifier};
use graft_project::{read_checkpoint, Checkpoint, HeadChoice, ModelStatus};
use graft_train::onnx::onnx_from_export;
use graft_train::{
    export_model, load_exported, predict as run_predict, BenchOptions, ExportBundle, Manifest, RunOutcome,
    TrainedModel, Trainer, MANIFEST_FILE, WEIGHTS_FILE,
};

use crate::args::{
    BenchArgs, CheckArgs, ConvertArgs, ExportArgs, ExportFormat, GpuPath, HeadName, PredictArgs, TrainArgs,
};
use crate::backend::{backend_label, device, load_pretrained, peak_rss_mib, weights_path};
use crate::progress::Progress;
use crate::project::{self, RunData};
use crate::recipe;

/// Exit status of a run stopped with Ctrl-C (the shell's convention for SIGINT).
const EXIT_CANCELLED: u8 = 130;

pub fn convert(args: &ConvertArgs) -> Result<ExitCode, String> {
    let weights = graft_model::WeightMap::from_pytorch_file(&args.pth).map_err(|e| e.to_string())?;
    // Check the checkpoint really is a complete MobileNetV2 before writing anything.
    let spec = HeadSpec::imagenet();
    ImageClassifier::from_pretrained(&weights, &spec, &Device::flex()).map_err(|e| {
        let mut names: Vec<&str> = weights.names().collect();
        names.sort_unstable();
        format!(
            "{e} (the checkpoint has {} tensors: {} …)",
            names.len(),
            names.iter().take(4).copied().collect::<Vec<_>>().join(", ")
        )
    })?;
    let stored = match args.store {
        crate::args::Store::F32 => graft_model::StoredAs::F32,
        crate::args::Store::F16 => graft_model::StoredAs::F16,
        crate::args::Store::Int8 => graft_model::StoredAs::Int8,
    };
    let bytes = weights.to_safetensors_bytes_as(stored, None).map_err(|e| e.to_string())?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&args.out, &bytes).map_err(|e| e.to_string())?;
    println!(
        "wrote {}: {} tensors as {stored:?}, {:.1} MB",
        args.out.display(),
        weights.len(),
        bytes.len() as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

/// The head `--head` asks for: the same choice, and the same rule, as the page's settings.
fn head_kind(head: HeadName, classes: &[String]) -> Result<HeadKind, String> {
    let choice = match head {
        HeadName::Replace => HeadChoice::Replace,
        HeadName::Stacked => HeadChoice::Stacked,
        HeadName::Keep => HeadChoice::KeepImagenet,
    };
    choice.kind(classes).map_err(|e| format!("--head keep: {e} (name each class folder after one)"))
}

pub fn train(args: &TrainArgs) -> Result<ExitCode, String> {
    train_with(args, None)
}

/// `train`, optionally at another learning rate (what `lr-find --apply-out` suggests).
pub fn train_with(args: &TrainArgs, lr: Option<f64>) -> Result<ExitCode, String> {
    let RunData { mut cfg, mut dataset, project } = project::open_run_data(&args.run)?;
    if let Some(lr) = lr {
        cfg.lr = lr;
    }
    if args.save_project.is_some() && project.is_none() {
        return Err("--save-project needs a project file as the data (see `graft project pack`)".into());
    }
    let dev = device(args.run.common.backend);
    // A project's head choice, unless --head is given.
    let kind = match &project {
        Some(p) if !args.run.given("head") => p.settings.head.kind(&dataset.classes)?,
        _ => head_kind(args.head, &dataset.classes)?,
    };
    let spec = HeadSpec { kind, num_classes: dataset.classes.len(), seed: cfg.seed };
    let from = args.from.as_ref().map(|path| read_start(path).map(|c| (path, c))).transpose()?;
    // A checkpoint of the other backbone decides the backbone, unless --backbone says otherwise
    // (then the mismatch is refused by name below).
    if let Some(arch) = from.as_ref().and_then(|(_, c)| c.architecture()) {
        if arch != cfg.backbone && !args.run.given("backbone") {
            println!("--from: the checkpoint is {}'s, so the run trains {}", arch.title(), arch.title());
            cfg.backbone = arch;
            dataset.preprocess = cfg.preprocess();
        }
    }
    let model = match from {
        Some((path, checkpoint)) => {
            let start =
                checkpoint.start(cfg.backbone, &dataset.classes, &spec.kind).map_err(|e| format!("--from: {e}"))?;
            for note in start.notes() {
                println!("--from {}: {note}", path.display());
            }
            start.into_model(&spec, &dev)?
        }
        None => {
            let pretrained = load_pretrained(&weights_path(&args.run.common, cfg.backbone))?;
            ImageClassifier::from_pretrained(&pretrained, &spec, &dev).map_err(|e| e.to_string())?
        }
    };
    let epochs = cfg.epochs;
    let run_cfg = cfg.clone();
    let mut trainer = Trainer::new(cfg, dataset, model, &dev).map_err(|e| e.to_string())?;

    // Ctrl-C stops the run at the next step; the stream then ends in `Cancelled`.
    let cancel = trainer.cancel_token();
    ctrlc::set_handler(move || cancel.cancel()).map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;

    let mut progress = Progress::new(args.run.json);
    while let Some(event) = block_on(trainer.next_event()) {
        progress.show(&event);
    }
    let result = trainer.finish();
    println!("{}", result.outcome.describe(epochs));
    let code = match &result.outcome {
        RunOutcome::Done => ExitCode::SUCCESS,
        RunOutcome::Cancelled { .. } if args.keep_partial && result.trained.is_some() => ExitCode::from(EXIT_CANCELLED),
        RunOutcome::Cancelled { .. } => {
            println!("nothing exported (pass --keep-partial to export the last completed epoch)");
            return Ok(ExitCode::from(EXIT_CANCELLED));
        }
        RunOutcome::Failed { .. } => {
            println!("nothing exported");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(trained) = result.trained else {
        return Err("the run left no model to export".into());
    };
    let bundle = block_on(export_model(&trained)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    for (name, bytes) in &bundle.files {
        std::fs::write(args.out.join(name), bytes).map_err(|e| e.to_string())?;
    }
    println!("exported to {}", args.out.display());
    if let (Some(out), Some(project)) = (&args.save_project, project) {
        let status = match result.outcome {
            RunOutcome::Cancelled { completed_epochs } => ModelStatus::Stopped { completed_epochs, epochs },
            _ => ModelStatus::Complete,
        };
        let bytes = project::with_model(project, run_cfg, &trained, &bundle, status)?;
        std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))?;
        println!("saved the project with this model to {}", out.display());
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory {mib:.0} MiB");
    }
    Ok(code)
}

pub fn predict(args: &PredictArgs) -> Result<ExitCode, String> {
    let dev = device(args.common.backend);
    let (model, preprocess, classes, images) = if args.imagenet {
        let pretrained = load_pretrained(&weights_path(&args.common, args.common.backbone))?;
        let spec = HeadSpec::imagenet();
        let model = ImageClassifier::from_pretrained(&pretrained, &spec, &dev).map_err(|e| e.to_string())?;
        let classes = imagenet_labels().into_iter().map(String::from).collect();
        // The normalisation of the network the weights are for.
        let cfg = graft_train::TrainConfig { backbone: model.arch(), ..Default::default() };
        (model, cfg.preprocess(), classes, args.paths.clone())
    } else {
        let (dir, images) = args.paths.split_first().ok_or("usage: graft predict MODEL_DIR IMAGE...")?;
        if images.is_empty() {
            return Err("usage: graft predict MODEL_DIR IMAGE...".into());
        }
        let trained = load_model_dir(dir, &dev)?;
        (trained.model, trained.manifest.preprocess(), trained.manifest.classes, images.to_vec())
    };
    let mut failed = false;
    let mut inputs: Vec<f32> = Vec::new();
    for path in &images {
        let decoded = std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| {
            decode_image_for_side(&b, &path.to_string_lossy(), preprocess.resize_side).map_err(|e| e.to_string())
        });
        match decoded {
            Err(e) => {
                failed = true;
                if args.json {
                    println!("{}", serde_json::json!({ "file": path, "error": e }));
                } else {
                    println!("{}: cannot use: {e}", path.display());
                }
            }
            Ok(image) => {
                if args.save_inputs.is_some() {
                    inputs.extend(preprocess.eval(&preprocess.prepare(&image)));
                }
                let preds = block_on(run_predict(&model, &preprocess, &[image], &dev))?;
                let top = preds[0].top_k(args.top);
                if args.json {
                    let top: Vec<_> = top.iter().map(|(c, p)| serde_json::json!([classes[*c], p])).collect();
                    let line = serde_json::json!({ "file": path, "top": top, "probabilities": preds[0].probabilities });
                    println!("{line}");
                } else {
                    let ranked: Vec<String> = top.iter().map(|(c, p)| format!("{} {:.4}", classes[*c], p)).collect();
                    println!("{}: {}", path.display(), ranked.join(", "));
                }
            }
        }
    }
    if let Some(out) = &args.save_inputs {
        let side = preprocess.input_size as usize;
        let shape = [inputs.len() / (3 * side * side), 3, side, side];
        std::fs::write(out, npy_f32(&shape, &inputs)).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A NumPy `.npy` (format 1.0) holding little-endian f32 values of `shape`, C order.
fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    // The magic (6), version (2) and length (2) plus the header and its '\n' end on a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend(u16::try_from(header.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

const EXPORT_FILES: [&str; 3] = ["model.safetensors", "labels.json", "manifest.json"];

fn read_model_dir(dir: &Path) -> Result<ExportBundle, String> {
    let files = EXPORT_FILES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::read(&path).map(|b| (name.to_string(), b)).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ExportBundle { files })
}

/// A starting checkpoint from its path: an export directory, or any file [`read_checkpoint`]
/// knows (a PyTorch `.pth` or safetensors state_dict, an export zip, a project file).
fn read_start(path: &Path) -> Result<Checkpoint, String> {
    if path.is_dir() {
        let bundle = read_model_dir(path)?;
        let file = |name| bundle.file(name).ok_or_else(|| format!("{}: no {name}", path.display()));
        let manifest: Manifest =
            serde_json::from_slice(file(MANIFEST_FILE)?).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Checkpoint::Graft { weights: file(WEIGHTS_FILE)?.to_vec(), manifest: Box::new(manifest) });
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_checkpoint(&path.display().to_string(), &bytes)
}

/// Loads an exported model directory (`model.safetensors` + `manifest.json`).
pub fn load_model_dir(dir: &Path, dev: &Device) -> Result<TrainedModel, String> {
    read_model_dir(dir)?.load(dev).map_err(|e| e.to_string())
}

pub fn export(args: &ExportArgs) -> Result<ExitCode, String> {
    let bundle = read_model_dir(&args.model_dir)?;
    // Load once to refuse packing a broken model.
    let (weights, manifest) = (bundle.file(EXPORT_FILES[0]), bundle.file(EXPORT_FILES[2]));
    let (Some(weights), Some(manifest)) = (weights, manifest) else {
        return Err("the model directory is incomplete".into());
    };
    let loaded: Result<(ImageClassifier, Manifest), _> = load_exported(weights.to_vec(), manifest, &Device::flex());
    let (_, manifest) = loaded.map_err(|e| e.to_string())?;
    let bytes = match args.format {
        ExportFormat::Zip => write_zip(&bundle.files).map_err(|e| e.to_string())?,
        ExportFormat::Onnx => onnx_from_export(&bundle).map_err(|e| e.to_string())?,
        ExportFormat::PytorchRecipe => {
            let data = recipe::data_path(args.data.as_ref())?;
            let written = recipe::write_recipe(&bundle, &manifest, data, &args.out)?;
            println!(
                "wrote {}: {} training and {} validation pictures ({} files skipped), start/, train.py, README.md",
                args.out.display(),
                written.train,
                written.val,
                written.skipped
            );
            println!("run: cd {} && torchrun --nproc_per_node=2 train.py --epochs 5 --out out", args.out.display());
            return Ok(ExitCode::SUCCESS);
        }
    };
    std::fs::write(&args.out, bytes).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn bench(args: &BenchArgs) -> Result<ExitCode, String> {
    let dev = device(args.common.backend);
    let backend = backend_label(args.common.backend);
    let pretrained = load_pretrained(&weights_path(&args.common, args.common.backbone))?;
    let (batches, iters, input) = (&args.batches, args.iters.max(1), args.input_size);
    let options = BenchOptions { time_op_groups: args.profile };
    let gpu = graft_model::launches::is_gpu(&dev);
    let paths: &[(bool, &str)] = match (gpu, args.gpu_path) {
        (false, _) => &[(true, "")],
        (true, GpuPath::Graft) => &[(true, " [graft kernels]")],
        (true, GpuPath::Generic) => &[(false, " [burn generic]")],
        (true, GpuPath::Both) => &[(false, " [burn generic]"), (true, " [graft kernels]")],
    };
    let mut report: Option<graft_train::BenchReport> = None;
    for &(kernels, label) in paths {
        graft_model::gpu::set_enabled(kernels);
        let mut part = block_on(graft_train::bench(&pretrained, &dev, batches, iters, input, options))?;
        part.rows.iter_mut().for_each(|r| r.what.push_str(label));
        match report.as_mut() {
            Some(r) => r.rows.extend(part.rows),
            None => report = Some(part),
        }
    }
    graft_model::gpu::set_enabled(true);
    let mut report = report.ok_or("nothing was measured")?;
    report.rows.push(graft_project::bench_ingest(16));
    report.rows.push(graft_project::bench_ingest_phone(4));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    }
    println!("backend {backend}, input {input}x{input}, {iters} timed batches each");
    println!("{:<58} {:>5} {:>9} {:>9} {:>8} {:>10}", "what", "batch", "img/s", "ms/batch", "GFLOP/s", "dispatches");
    for r in &report.rows {
        let gflops = r.gflops_per_sec.map(|g| format!("{g:.1}")).unwrap_or_else(|| "-".into());
        let dispatches = r.dispatches.map(|d| format!("{d:.0}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<58} {:>5} {:>9.2} {:>9.1} {gflops:>8} {dispatches:>10}",
            r.what, r.batch, r.images_per_sec, r.ms_per_batch
        );
    }
    for r in report.rows.iter().filter(|r| !r.op_groups.is_empty()) {
        println!("  {} (batch {}), one batch by op group:", r.what, r.batch);
        for g in &r.op_groups {
            let ms = g.ms.map(|ms| format!("{ms:9.1} ms")).unwrap_or_default();
            println!("    {:<34} {:>6} launches {ms}", g.group, g.launches);
        }
    }
    for &b in batches {
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
    Ok(ExitCode::SUCCESS)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes every file under a folder (as training would) and tallies what is used and why the
/// rest is refused. A decoder panic is caught and counted: the tally says if anything crashed.
pub fn check(args: &CheckArgs) -> Result<ExitCode, String> {
    let mut files = Vec::new();
    files_under(&args.dir, &mut files).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    files.sort();
    let (mut used, mut crashed) = (0usize, Vec::new());
    let mut refused: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let pre = graft_train::TrainConfig::default().preprocess();
    for path in &files {
        let name = path.strip_prefix(&args.dir).unwrap_or(path).to_string_lossy().into_owned();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        let outcome = std::panic::catch_unwind(|| {
            decode_image_for_side(&bytes, &name, pre.resize_side).map(|image| pre.prepare(&image).dimensions())
        });
        match outcome {
            Ok(Ok(_)) => used += 1,
            Ok(Err(e)) => {
                refused.entry(e.kind()).or_default().push(if args.json { name } else { format!("{name}: {e}") })
            }
            Err(_) => crashed.push(name),
        }
    }
    let refused_total: usize = refused.values().map(Vec::len).sum();
    if args.json {
        let by_reason: BTreeMap<_, _> = refused.iter().map(|(k, v)| (*k, v.len())).collect();
        let mut json = serde_json::json!({
            "files": files.len(), "used": used, "refused": refused_total,
            "refused_by_reason": by_reason, "crashed": crashed,
        });
        if args.verbose {
            json["refused_files"] = serde_json::json!(refused);
        }
        println!("{json}");
    } else {
        println!("{} files: {used} used, {refused_total} refused, {} crashed", files.len(), crashed.len());
        for (reason, names) in &refused {
            println!("  refused ({reason}): {}", names.len());
            if args.verbose {
                names.iter().for_each(|n| println!("    {n}"));
            }
        }
        crashed.iter().for_each(|n| println!("  CRASHED: {n}"));
    }
    Ok(if crashed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
