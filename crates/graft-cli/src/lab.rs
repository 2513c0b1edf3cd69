//! The teaching lab in a terminal: `compare`, `lr-find` and `report` on a folder of class
//! subfolders (the same engine functions the web app's Lab panel calls).

use std::path::PathBuf;
use std::process::ExitCode;

use futures::executor::block_on;
use graft_data::Dataset;
use graft_lab::{lr_find_for_run, most_confused, top_losses};
use graft_model::{Architecture, WeightSource};
use graft_train::{CancelToken, TrainEvent};

use crate::args::{CompareArgs, LrFindArgs, ReportArgs};
use crate::backend::{device, load_pretrained, weights_path};
use crate::project::{open_run_data, RunData};

/// `compare --backbones`: one run per backbone, then the table and its verdict.
fn compare_backbones(args: &CompareArgs) -> Result<ExitCode, String> {
    let RunData { cfg, dataset, .. } = open_run_data(&args.run)?;
    let dev = device(args.run.common.backend);
    // `--weights` stands in for its own backbone's default file.
    let mut given = args.run.common.weights.as_deref().map(load_pretrained).transpose()?;
    let pretrained = Architecture::ALL
        .into_iter()
        .map(|arch| match given.take_if(|w| w.architecture() == arch) {
            Some(w) => Ok(w),
            None => load_pretrained(&PathBuf::from("static/weights").join(arch.weights_file())),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let pretrained: Vec<&graft_model::WeightMap> = pretrained.iter().collect();
    let cancel = CancelToken::default();
    let stop = cancel.clone();
    ctrlc::set_handler(move || stop.cancel()).map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let json = args.run.json;
    let rows = block_on(graft_lab::run_backbone_compare(&dataset, &pretrained, &cfg, &dev, &cancel, |event| {
        match &event {
            _ if json => println!("{}", serde_json::to_string(&event).unwrap_or_default()),
            graft_lab::BackboneCompareEvent::Started { index, of, arch } => {
                println!("== run {}/{of}: {} ({} mode)", index + 1, arch.title(), cfg.mode.label());
            }
            graft_lab::BackboneCompareEvent::Train { run_event: TrainEvent::Epoch(m), .. } => {
                println!("   epoch {:>2}: val acc {}", m.epoch, percent(m.val_accuracy));
            }
            _ => {}
        }
        async {}
    }))?;
    println!();
    println!(
        "{:<20} {:>9} {:>8} {:>8} {:>8} {:>11} {:>9} {:>10}",
        "backbone", "val acc", "seconds", "img/s", "size MB", "parameters", "M MACs", "ImageNet"
    );
    for row in &rows {
        println!(
            "{:<20} {:>9} {:>8.1} {:>8.1} {:>8.1} {:>11} {:>9.0} {:>9.1}%",
            row.arch.title(),
            percent(row.val_accuracy),
            row.seconds,
            row.images_per_sec,
            row.model_mb,
            row.parameters,
            row.multiply_adds_m,
            row.imagenet_top1,
        );
    }
    println!();
    println!("{}", graft_lab::backbone_verdict(&rows));
    Ok(if rows.len() == Architecture::ALL.len() { ExitCode::SUCCESS } else { ExitCode::from(130) })
}

fn percent(v: Option<f32>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "–".into())
}

pub fn compare(args: &CompareArgs) -> Result<ExitCode, String> {
    if args.backbones {
        return compare_backbones(args);
    }
    let RunData { cfg, dataset, .. } = open_run_data(&args.run)?;
    let dev = device(args.run.common.backend);
    let pretrained = load_pretrained(&weights_path(&args.run.common, cfg.backbone))?;
    let cancel = CancelToken::default();
    let stop = cancel.clone();
    ctrlc::set_handler(move || stop.cancel()).map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let json = args.run.json;
    let rows = block_on(graft_lab::run_compare(&dataset, &pretrained, &cfg, &dev, &cancel, |event| {
        match &event {
            _ if json => println!("{}", serde_json::to_string(&event).unwrap_or_default()),
            graft_lab::CompareEvent::Started { index, of, label, .. } => println!("== run {}/{of}: {label}", index + 1),
            graft_lab::CompareEvent::Train { run_event: TrainEvent::Epoch(m), .. } => {
                println!("   epoch {:>2}: val acc {}", m.epoch, percent(m.val_accuracy))
            }
            _ => {}
        }
        async {}
    }))?;
    println!();
    println!(
        "{:<46} {:>9} {:>8} {:>8} {:>8} {:>10} {:>22}",
        "run", "val acc", "val loss", "seconds", "img/s", "ImageNet", "layer change 0 / 9 / 18"
    );
    for (row, _) in &rows {
        let change = |i: usize| row.layer_change.get(i).map(|c| format!("{c:.3}")).unwrap_or_else(|| "–".into());
        println!(
            "{:<46} {:>9} {:>8} {:>8.1} {:>8.1} {:>10} {:>22}",
            row.label,
            percent(row.val_accuracy),
            row.val_loss.map(|l| format!("{l:.3}")).unwrap_or_else(|| "–".into()),
            row.seconds,
            row.images_per_sec,
            percent(row.imagenet_agreement),
            format!("{} / {} / {}", change(0), change(9), change(18)),
        );
    }
    println!();
    for (row, _) in &rows {
        println!("{}: {}\n  here: {}", row.label, row.teaches, row.verdict);
    }
    Ok(if rows.len() == graft_lab::Lesson::ALL.len() { ExitCode::SUCCESS } else { ExitCode::from(130) })
}

pub fn lr_find(args: &LrFindArgs) -> Result<ExitCode, String> {
    let RunData { cfg, dataset, .. } = open_run_data(&args.run)?;
    let dev = device(args.run.common.backend);
    let pretrained = load_pretrained(&weights_path(&args.run.common, cfg.backbone))?;
    dataset.validate().map_err(|e| e.to_string())?;
    let result = block_on(lr_find_for_run(&pretrained, &dataset, &cfg, Some(args.steps), &dev, |_, _, _| async {}))?;
    if args.run.json {
        println!("{}", serde_json::to_string(&result).map_err(|e| e.to_string())?);
    } else {
        println!("{:>12} {:>10} {:>10}", "lr", "loss", "smoothed");
        for ((lr, loss), smooth) in result.lrs.iter().zip(&result.losses).zip(&result.smoothed).step_by(4) {
            println!("{lr:>12.2e} {loss:>10.4} {smooth:>10.4}");
        }
        if result.diverged {
            println!(
                "the loss exploded at lr {:.2e}: the sweep stopped there",
                result.lrs.last().copied().unwrap_or(0.0)
            );
        }
    }
    match result.suggestion {
        Some(lr) => {
            println!("suggested learning rate: {lr:.2e} (where the loss falls fastest)");
            if let Some(out) = &args.apply_out {
                println!("training with it…");
                let train = crate::args::TrainArgs {
                    run: args.run.clone(),
                    out: out.clone(),
                    head: crate::args::HeadName::Replace,
                    from: None,
                    keep_partial: false,
                    save_project: None,
                };
                return crate::commands::train_with(&train, Some(lr));
            }
        }
        None => println!("no clear descent: try more steps or more pictures"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn report(args: &ReportArgs) -> Result<ExitCode, String> {
    let dev = device(args.common.backend);
    let (model, cfg) = match &args.model {
        Some(dir) => {
            let trained = crate::commands::load_model_dir(dir, &dev)?;
            let cfg = trained.manifest.training.clone().unwrap_or_default();
            (Some(trained), cfg)
        }
        None => (None, graft_train::TrainConfig { backbone: args.common.backbone, ..Default::default() }),
    };
    let pretrained = load_pretrained(&weights_path(&args.common, cfg.backbone))?;
    let dataset = Dataset::from_folder(&args.data_dir, cfg.preprocess()).map_err(|e| e.to_string())?;
    println!("== data checks ({} pictures, {} classes)", dataset.items.len(), dataset.classes.len());
    let view = block_on(graft_lab::pretrained_view(&pretrained, &dataset, &dev, |_, _| async {}))?;
    let findings = graft_lab::data_findings(&dataset, &view, &cfg);
    if findings.is_empty() {
        println!("nothing to report");
    }
    for f in &findings {
        println!("- {}", f.describe());
    }
    if let Some(trained) = model {
        if trained.manifest.classes != dataset.classes {
            return Err(format!(
                "the model's classes {:?} differ from the folder's {:?}",
                trained.manifest.classes, dataset.classes
            ));
        }
        let eval = block_on(graft_lab::evaluate(&trained.model, &dataset, &cfg, &dev))?;
        println!();
        println!("== the model on its validation split: accuracy {:.1}%", eval.accuracy * 100.0);
        for pair in most_confused(&eval, 1).iter().take(5) {
            println!("- {}", pair.describe(&dataset.classes));
        }
        println!("most confidently wrong:");
        for item in top_losses(&eval, 5) {
            println!(
                "  {} — a `{}` taken for `{}` ({:.0}% sure)",
                item.name,
                dataset.classes[item.label],
                dataset.classes[item.predicted],
                item.confidence * 100.0
            );
        }
        let weights = block_on(trained.model.to_weight_map()).map_err(|e| e.to_string())?;
        let knowledge =
            block_on(graft_lab::backbone_knowledge(&pretrained, &weights, &dataset, &dev, |_, _, _| async {}))?;
        println!(
            "backbone layer change (features.0 … 18): {}",
            knowledge.layer_change.iter().map(|c| format!("{c:.3}")).collect::<Vec<_>>().join(" ")
        );
        println!(
            "what the backbone still knows: ImageNet top-1 unchanged on {:.1}% of the pictures",
            knowledge.imagenet_agreement * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
