//! Browser side of a training run: builds the dataset and trainer from the page state, drives
//! it step by step (yielding to the event loop between steps), and feeds the event stream into
//! the reactive `RunView`. Also prediction and export of the trained model.

use graft_data::{decode_image, Augment, Dataset, Preprocess};
use graft_model::{imagenet_rows_for, HeadKind, HeadSpec, ImageClassifier};
use graft_train::{export_model, predict, Manifest, TrainConfig, TrainEvent, Trainer};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::download;
use crate::state::{AppState, HeadChoice, PredictionRow, Progress, RunStatus, StepPoint, Trained};

pub const INPUT_SIZE: u32 = 224;

pub fn preprocess() -> Preprocess {
    Preprocess::imagenet(INPUT_SIZE)
}

fn config(state: &AppState, classes: &[String]) -> Result<TrainConfig, String> {
    let s = state.settings;
    let head = match s.head.get_untracked() {
        HeadChoice::Replace => HeadKind::Replace,
        HeadChoice::Stacked => HeadKind::Stacked,
        HeadChoice::KeepImagenet => HeadKind::KeepImagenet {
            rows: imagenet_rows_for(classes)
                .ok_or("\"keep the ImageNet head\" needs every class named after an ImageNet class")?,
        },
    };
    Ok(TrainConfig {
        mode: s.mode.get_untracked(),
        head,
        epochs: s.epochs.get_untracked(),
        lr: s.lr.get_untracked(),
        backbone_ratio: s.ratio.get_untracked(),
        layer_groups: s.layer_groups.get_untracked(),
        warmup_epochs: s.warmup.get_untracked(),
        batch_size: s.batch.get_untracked(),
        val_fraction: s.val_split.get_untracked(),
        augment: s.augment.get_untracked().then(Augment::default),
        seed: s.seed.get_untracked(),
        input_size: INPUT_SIZE,
        ..TrainConfig::default()
    })
}

/// The images on the class cards, as a dataset (class order = card order).
fn dataset(state: &AppState) -> Dataset {
    let cards = state.classes.get_untracked();
    let classes: Vec<String> = cards.iter().map(|c| c.name.get_untracked().trim().to_string()).collect();
    let mut dataset = Dataset::new(classes);
    state.engine.with_value(|e| {
        for (label, card) in cards.iter().enumerate() {
            for item in e.images.get(&card.id).map(|d| d.items.as_slice()).unwrap_or_default() {
                dataset.items.push(graft_data::ImageItem { label, ..item.clone() });
            }
        }
    });
    dataset
}

fn fail(state: &AppState, message: String) {
    state.run.error.set(Some(message));
    state.run.status.set(RunStatus::Failed);
}

pub fn start_training(state: AppState) {
    let run = state.run;
    run.error.set(None);
    let backend = state.backend();
    let Some(device) = state.device(backend) else {
        return fail(&state, "the selected backend is not available".into());
    };
    let Some(pretrained) = state.engine.with_value(|e| e.pretrained.clone()) else {
        return fail(&state, "the backbone is not loaded yet".into());
    };
    let dataset = dataset(&state);
    let cfg = match config(&state, &dataset.classes) {
        Ok(c) => c,
        Err(e) => return fail(&state, e),
    };
    let spec = HeadSpec { kind: cfg.head.clone(), num_classes: dataset.classes.len(), seed: cfg.seed };
    let classes = dataset.classes.clone();
    let model = match ImageClassifier::from_pretrained(&pretrained, &spec, &device) {
        Ok(m) => m,
        Err(e) => return fail(&state, e.to_string()),
    };
    let mut trainer = match Trainer::new(cfg.clone(), dataset, model, &device) {
        Ok(t) => t,
        Err(e) => return fail(&state, e.to_string()),
    };

    run.status.set(RunStatus::Running);
    run.mode.set(cfg.mode);
    run.backend.set(backend);
    run.steps.set(Vec::new());
    run.phases.set(Vec::new());
    run.extract_images_per_sec.set(None);
    run.epochs.set(Vec::new());
    run.evaluation.set(None);
    run.warnings.set(Vec::new());
    run.classes.set(classes.clone());
    run.progress.set(Progress { fraction: 0.0, text: "starting".into() });
    state.engine.update_value(|e| e.cancel = Some(trainer.cancel_token()));

    // Consumer: the event stream → signals. Ends when the trainer (sender) is dropped.
    let events = trainer.events();
    spawn_local(async move {
        let mut last = RunStatus::Failed;
        while let Ok(event) = events.recv().await {
            if let Some(status) = apply_event(&state, event) {
                last = status;
            }
        }
        run.status.set(last);
    });

    // Driver: one batch per step, yielding so the page repaints and handles clicks.
    spawn_local(async move {
        trainer.run(|| gloo::timers::future::TimeoutFuture::new(0)).await;
        let manifest = Manifest::new(classes, cfg.head.clone(), &preprocess(), Some(cfg), Some(trainer.summary()));
        // Keep the model if at least one epoch completed (a Stop keeps what was learned so far).
        let usable = trainer.is_finished() && !trainer.summary().epochs.is_empty();
        let model = trainer.model();
        drop(trainer); // closes the event stream once the consumer drains it
        if usable {
            state.engine.update_value(|e| e.trained = Some(Trained { model, manifest, device }));
            state.has_model.set(true);
            state.predictions.set(Vec::new());
        }
    });
}

/// Applies one event; returns the final status for terminal events.
fn apply_event(state: &AppState, event: TrainEvent) -> Option<RunStatus> {
    let run = state.run;
    match event {
        TrainEvent::Loaded { file_errors, .. } => {
            for e in file_errors {
                run.warnings.update(|w| w.push(format!("{}: {}", e.file, e.reason)));
            }
        }
        TrainEvent::Phase { phase } => {
            run.phase.set(Some(phase));
            run.phases.update(|p| p.push(phase));
        }
        TrainEvent::Extract { done, total, images_per_sec } => {
            run.images_per_sec.set(images_per_sec);
            run.extract_images_per_sec.set(Some(images_per_sec));
            run.progress.set(Progress {
                fraction: done as f32 / total.max(1) as f32,
                text: format!("backbone features {done}/{total} · {images_per_sec:.1} img/s"),
            });
        }
        TrainEvent::Step(s) => {
            let total = (s.epochs * s.steps_per_epoch).max(1);
            let done = (s.epoch - 1) * s.steps_per_epoch + s.step;
            run.images_per_sec.set(s.images_per_sec);
            run.progress.set(Progress {
                fraction: done as f32 / total as f32,
                text: format!(
                    "epoch {}/{} · step {}/{} · {:.1} img/s · ETA {:.0}s",
                    s.epoch, s.epochs, s.step, s.steps_per_epoch, s.images_per_sec, s.eta_secs
                ),
            });
            run.steps.update(|v| {
                v.push(StepPoint {
                    epoch: s.epoch,
                    step: s.step,
                    loss: s.loss,
                    accuracy: s.accuracy,
                    images_per_sec: s.images_per_sec,
                })
            });
        }
        TrainEvent::Epoch(m) => run.epochs.update(|v| v.push(m)),
        TrainEvent::Evaluation(e) => run.evaluation.set(Some(e)),
        TrainEvent::Warning { message } => run.warnings.update(|w| w.push(message)),
        TrainEvent::Done(summary) => {
            run.images_per_sec.set(summary.images_per_sec);
            run.progress.update(|p| {
                p.fraction = 1.0;
                p.text = format!("done in {:.1}s · {:.1} img/s overall", summary.seconds, summary.images_per_sec);
            });
            return Some(RunStatus::Done);
        }
        TrainEvent::Cancelled => return Some(RunStatus::Cancelled),
        TrainEvent::Failed { message } => {
            run.error.set(Some(message));
            return Some(RunStatus::Failed);
        }
    }
    None
}

pub fn stop_training(state: AppState) {
    state.engine.with_value(|e| {
        if let Some(c) = &e.cancel {
            c.cancel()
        }
    });
}

pub fn predict_bytes(state: AppState, bytes: &[u8]) {
    state.predict_error.set(None);
    let image = match decode_image(bytes) {
        Ok(i) => i,
        Err(e) => return state.predict_error.set(Some(e.to_string())),
    };
    spawn_local(async move {
        // Take the model out while awaiting so no borrow of the store spans the await.
        let Some(trained) = state.engine.try_update_value(|e| e.trained.take()).flatten() else {
            return state.predict_error.set(Some("train a model first".into()));
        };
        let pre = trained.manifest.preprocess();
        let result = predict(&trained.model, &pre, &[image], &trained.device).await;
        state.engine.update_value(|e| e.trained = Some(trained));
        match result {
            Ok(p) => state.predictions.set(
                p[0].top_k(usize::MAX)
                    .into_iter()
                    .map(|(class, probability)| PredictionRow { class, probability })
                    .collect(),
            ),
            Err(e) => state.predict_error.set(Some(e)),
        }
    });
}

pub fn export(state: AppState) {
    spawn_local(async move {
        let Some(trained) = state.engine.try_update_value(|e| e.trained.take()).flatten() else {
            return;
        };
        let result = export_model(&trained.model, &trained.manifest).await;
        state.engine.update_value(|e| e.trained = Some(trained));
        match result
            .map_err(|e| e.to_string())
            .and_then(|bundle| download(&bundle.to_zip(), "graft-model.zip", "application/zip"))
        {
            Ok(()) => {}
            Err(e) => state.run.error.set(Some(format!("export failed: {e}"))),
        }
    });
}

/// Decodes dropped files for a class card; every unusable file gets a message on the card.
pub async fn add_files(state: AppState, card: crate::state::ClassCard, files: Vec<(String, web_sys::File)>) {
    let pre = preprocess();
    for (name, file) in files {
        let bytes = match crate::browser::file_bytes(&file).await {
            Ok(b) => b,
            Err(e) => {
                card.errors
                    .update(|v| v.push(graft_data::FileError { file: name, reason: format!("cannot read file: {e}") }));
                continue;
            }
        };
        // Same decode/refuse/resize path as the CLI's folder loader (graft_data::Dataset::add).
        let added = state.engine.try_update_value(|e| {
            e.images.entry(card.id).or_default().add(graft_data::LabelledBytes { label: 0, name, bytes }, &pre)
        });
        match added {
            Some(Ok(())) => {
                if let Some(url) = crate::browser::object_url(&file) {
                    card.thumbs.update(|t| t.push(url));
                }
                card.count.update(|c| *c += 1);
            }
            Some(Err(e)) => card.errors.update(|v| v.push(e)),
            None => {}
        }
        // Decoding is CPU work on the page's thread: let it repaint between files.
        gloo::timers::future::TimeoutFuture::new(0).await;
    }
}
