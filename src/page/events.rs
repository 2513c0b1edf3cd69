//! Every event from the engine worker becomes signal updates here; components only read them.

use graft_train::{RunOutcome, TrainEvent};
use leptos::prelude::*;

use graft::protocol::{BootStage, Event, Level};

use crate::page::browser::{download, jpeg_url, revoke};
use crate::page::state::{AppState, Boot, ClassCard, PredictionRow, Progress, RunStatus, StepPoint, ThumbUrl};
use crate::page::THUMBS_SHOWN;

pub fn apply(state: &AppState, event: Event) {
    match event {
        Event::Ready | Event::Crashed { .. } | Event::TakenOver => {}
        Event::Job { running } => {
            if running.is_none() {
                // A job that was stopped sends no result: what waited for one waits no more.
                state.bench_running.set(false);
                state.lab.progress.set(None);
                state.lab.compare_running.set(false);
                state.lab.backbone_running.set(false);
            }
            state.job.set(running);
        }
        Event::Boot(stage) => {
            if matches!(stage, BootStage::Ready | BootStage::Failed { .. }) {
                state.quiet_switch.set(false);
            }
            state.boot.set(match stage {
                BootStage::Starting { message } => Boot::Starting(message),
                BootStage::Downloading { loaded, total } => Boot::Loading { loaded, total },
                BootStage::Restoring => Boot::Restoring,
                BootStage::Ready => Boot::Ready,
                BootStage::Failed { message } => Boot::Failed(message),
            })
        }
        Event::Compute(info) => {
            state.backend_choice.set(info.choice);
            if info.gpu_check.is_some() {
                state.choice.gpu_check.set(info.gpu_check.clone());
            }
            state.compute.set(info);
        }
        Event::Project(view) => {
            for card in state.classes.get_untracked() {
                card.thumbs.with_untracked(|t| t.iter().for_each(|t| revoke(&t.url)));
            }
            let cards = view
                .classes
                .iter()
                .map(|c| {
                    let card = ClassCard::new(c.id, &c.name);
                    card.count.set(c.count);
                    card
                })
                .collect();
            state.classes.set(cards);
            state.settings.load(&view.settings);
            state.model.set(view.model);
            state.start_from.set(view.start_from);
            state.predictions.set(Vec::new());
        }
        Event::ClassCreated { id, name } => match state.card(id) {
            Some(card) => card.name.set(name),
            None => state.classes.update(|c| c.push(ClassCard::new(id, &name))),
        },
        Event::Added { class_id, thumbs, count } => {
            if let Some(card) = state.card(class_id) {
                card.count.set(count);
                card.thumbs.update(|shown| {
                    shown.extend(
                        thumbs.into_iter().filter_map(|t| jpeg_url(&t.jpeg).map(|url| ThumbUrl { id: t.id, url })),
                    );
                    let excess = shown.len().saturating_sub(THUMBS_SHOWN);
                    shown.drain(..excess).for_each(|t| revoke(&t.url));
                });
            }
        }
        Event::Refused { class_id, problems } => {
            if let Some(card) = state.card(class_id) {
                card.errors.update(|e| e.extend(problems));
            }
        }
        Event::Ingest { done, total } => state.ingest.set((done < total).then_some((done, total))),
        Event::Train(e) => apply_train(state, e),
        Event::RunEnded { outcome, description } => {
            let run = state.run;
            run.outcome.set(Some(description));
            run.status.set(match &outcome {
                RunOutcome::Done => RunStatus::Done,
                RunOutcome::Cancelled { .. } => RunStatus::Cancelled,
                RunOutcome::Failed { message, .. } => {
                    run.error.set(Some(message.clone()));
                    RunStatus::Failed
                }
            });
        }
        Event::Model { model } => {
            // Bars from another model would be misleading.
            if state.model.get_untracked() != model {
                state.predictions.set(Vec::new());
            }
            state.model.set(model);
        }
        Event::Prediction { request, classes, probabilities } => {
            let mut rows: Vec<PredictionRow> = classes
                .into_iter()
                .zip(probabilities)
                .map(|(class, probability)| PredictionRow { class, probability })
                .collect();
            rows.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            state.predictions.set(rows);
            state.predict_error.set(None);
            crate::page::predict::answered(state, request);
        }
        Event::PredictFailed { request, message } => {
            state.predict_error.set(Some(message));
            crate::page::predict::answered(state, request);
        }
        Event::Download { name, mime, bytes } => {
            if let Err(e) = download(&bytes, &name, &mime) {
                state.notice(true, format!("download failed: {e}"));
            }
        }
        Event::Storage { used, quota, saved_images } => {
            state.storage.update(|s| {
                s.used = used;
                s.quota = quota;
                s.saved_images = saved_images;
            });
        }
        Event::Memory { wasm_bytes } => state.wasm_memory.set(Some(wasm_bytes)),
        Event::Notice { level, message } => {
            if message.starts_with("restored ") {
                state.restored.set(Some(message.clone()));
            }
            state.notice(level == Level::Error, message);
        }
        Event::Bench { report, backend } => {
            state.bench.set(Some(report.map(|r| (backend, r))));
            state.bench_running.set(false);
        }
        Event::KernelChecks { checks } => state.kernel_checks.set(Some(checks)),
        Event::BackboneSpeed { arch, engine, speed } => state.backbone_speeds.update(|all| {
            all.retain(|(a, ..)| *a != arch);
            all.push((arch, engine, speed));
        }),
        lab_event => crate::page::lab_events::apply(state, lab_event),
    }
}

fn apply_train(state: &AppState, event: TrainEvent) {
    let run = state.run;
    match event {
        TrainEvent::Loaded { classes, file_errors, .. } => {
            // The engine posts what it trains on before it starts (and may have just started).
            run.backend.set(state.compute.get_untracked().in_use);
            run.classes.set(classes);
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
        TrainEvent::Validate { epoch, done, total } => run.progress.update(|p| {
            p.text = format!("epoch {epoch}: validating {done}/{total}");
        }),
        TrainEvent::Epoch(m) => run.epochs.update(|v| v.push(m)),
        TrainEvent::Evaluation(e) => run.evaluation.set(Some(e)),
        TrainEvent::Warning { message } => run.warnings.update(|w| w.push(message)),
        TrainEvent::Done(summary) => {
            run.images_per_sec.set(summary.images_per_sec);
            run.progress.update(|p| {
                p.fraction = 1.0;
                p.text = format!("done in {:.1}s · {:.1} img/s overall", summary.seconds, summary.images_per_sec);
            });
        }
        TrainEvent::Cancelled { .. } | TrainEvent::Failed { .. } => {}
    }
}
