//! A training run inside the worker: pulls the trainer's events, posts each one to the page,
//! yields between steps (so Stop and Predict get through), saves the model of every completed
//! epoch (a reload or crash loses at most the current one) and keeps what the run leaves.

use std::rc::Rc;

use graft_project::ModelStatus;
use graft_train::{CancelToken, FailureReason, RunOutcome, TrainConfig, TrainEvent, Trainer};

use crate::protocol::{Event, Level};
use crate::worker::engine::Engine;
use crate::worker::jobs::JobGuard;
use crate::worker::link::{notice, post, wasm_memory_bytes, yield_now};

fn failed(description: &str) -> bool {
    let outcome = RunOutcome::Failed { reason: FailureReason::Setup, message: description.to_string() };
    post(&Event::RunEnded { outcome, description: format!("failed: {description}") });
    false
}

/// Epochs of a continued run: what the kept model had left, at least one.
fn remaining_epochs(status: ModelStatus, configured: usize) -> usize {
    match status {
        ModelStatus::Stopped { completed_epochs, epochs } | ModelStatus::Interrupted { completed_epochs, epochs } => {
            epochs.saturating_sub(completed_epochs).max(1)
        }
        ModelStatus::Complete => configured,
    }
}

pub async fn run(engine: Rc<Engine>, resume: bool, job: JobGuard) {
    let tuned_backbone = run_inner(&engine, resume, &job.cancel).await;
    // The run is over for the page ("done" was posted): a Train clicked now starts a new one.
    drop(job);
    post(&Event::Memory { wasm_bytes: wasm_memory_bytes() });
    // After a fine-tune, what the backbone still knows of ImageNet and how far each layer moved:
    // an analysis of the kept model, beside whatever runs next.
    if tuned_backbone {
        crate::worker::lab::knowledge(&engine).await;
    }
}

/// The run; whether it fine-tuned the backbone.
async fn run_inner(engine: &Rc<Engine>, resume: bool, stop: &CancelToken) -> bool {
    // New or Open during the run replaces the project: its model must not land in the new one.
    let generation = engine.project_generation.get();
    let same_project = || engine.project_generation.get() == generation;
    let mut cfg: TrainConfig = engine.project.borrow().settings.train.clone();
    let dataset = match engine.project.borrow().dataset(cfg.preprocess()) {
        Ok(d) => d,
        Err(e) => return failed(&e.to_string()),
    };
    if resume {
        if let Some(kept) = engine.kept.borrow().as_ref() {
            cfg.epochs = remaining_epochs(kept.record.status, cfg.epochs);
        }
    }
    // The backend measured fastest for this run's mode (or the user's choice).
    let backend = engine.backend_for(cfg.mode);
    let device = engine.device(backend);
    if let Err(e) = engine.pretrained_for(cfg.backbone).await {
        return failed(&e);
    }
    let model = match engine.starting_model(resume, cfg.backbone, &dataset.classes, cfg.seed, &device) {
        Ok(m) => m,
        Err(e) => return failed(&e),
    };
    let epochs = cfg.epochs;
    // The job's Stop is the trainer's: it ends the run after the current step.
    let mut trainer = match Trainer::new(cfg, dataset, model, &device) {
        Ok(t) => t.with_cancel(stop.clone()),
        Err(e) => return failed(&e.to_string()),
    };
    if resume {
        notice(Level::Info, format!("continuing the kept model for {epochs} more epoch(s)"));
    }

    let mut completed = 0;
    loop {
        let Some(event) = trainer.next_event().await else { break };
        let epoch_done = matches!(event, TrainEvent::Epoch(_));
        post(&Event::Train(event));
        if epoch_done {
            completed += 1;
            // Saved as "interrupted" until the run ends: what a reload would find.
            if let Some(checkpoint) = same_project().then(|| trainer.checkpoint()).flatten() {
                let status = ModelStatus::Interrupted { completed_epochs: completed, epochs };
                engine.keep_trained(checkpoint, status, backend, device.clone()).await;
            }
        }
        yield_now().await;
    }
    let result = trainer.finish();
    let description = result.outcome.describe(epochs);
    let tuned_backbone = trainer_mode_discriminative(&result);
    let gpu_lost = match &result.outcome {
        RunOutcome::Failed { reason, message } => engine.note_failure(backend, *reason, message).await,
        _ => false,
    };
    match (&result.outcome, result.trained) {
        (_, Some(_)) if !same_project() => {
            notice(Level::Info, "the project was replaced during the run: its model was not kept");
        }
        (RunOutcome::Done, Some(trained)) => {
            engine.keep_trained(trained, ModelStatus::Complete, backend, device).await;
        }
        (RunOutcome::Cancelled { completed_epochs }, Some(trained)) => {
            let status = ModelStatus::Stopped { completed_epochs: *completed_epochs, epochs };
            engine.keep_trained(trained, status, backend, device).await;
        }
        // The model of the last completed epoch (if any) stays kept, as saved.
        (RunOutcome::Failed { message, .. }, _) if gpu_lost => {
            notice(
                Level::Error,
                format!(
                    "the WebGPU device was lost during training ({message}). Switched to the CPU: your project and the last good model are kept{}",
                    if completed > 0 { " — press Continue training to go on from it" } else { "" }
                ),
            );
        }
        _ => {}
    }
    post(&Event::RunEnded { outcome: result.outcome, description });
    tuned_backbone
}

fn trainer_mode_discriminative(result: &graft_train::RunResult) -> bool {
    result
        .trained
        .as_ref()
        .and_then(|t| t.manifest.training.as_ref())
        .is_some_and(|cfg| cfg.mode == graft_train::Mode::Discriminative)
}
