//! Every command and every event survives the trip through serde and back unchanged. The page
//! and the worker exchange them as serde values (serde-wasm-bindgen, which follows serde's data
//! model like serde_json here): a tag that collides with a nested enum's, or an internally tagged
//! variant holding something that is not a map, fails only at run time, in the browser. The
//! `variant` functions have no wildcard arm, so a new variant does not compile until it has a
//! sample here.

use graft_lab::{BackboneCompareEvent, CompareEvent, Lesson, LrFinderResult};
use graft_model::Architecture;
use graft_project::{ModelStatus, Settings};
use graft_protocol::*;
use graft_train::{FailureReason, Mode, ModeSpeed, PhaseKind, RunOutcome, SpeedReading, TrainEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_value(value).unwrap_or_else(|e| panic!("{value:?} does not serialize: {e}"));
    let back: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{json} does not come back: {e}"));
    assert_eq!(&back, value, "changed on the way: {json}");
}

fn command_variant(c: &Command) -> usize {
    match c {
        Command::SelectBackend { .. } => 0,
        Command::AddClass { .. } => 1,
        Command::RenameClass { .. } => 2,
        Command::RemoveClass { .. } => 3,
        Command::AddFiles { .. } => 4,
        Command::AddFolder { .. } => 5,
        Command::AddFrames { .. } => 6,
        Command::SetSettings { .. } => 7,
        Command::Train { .. } => 8,
        Command::Stop => 9,
        Command::Predict { .. } => 10,
        Command::Export { .. } => 11,
        Command::SaveProject => 12,
        Command::DownloadPictures => 13,
        Command::OpenProject => 14,
        Command::NewProject => 15,
        Command::Bench { .. } => 16,
        Command::CheckKernels => 17,
        Command::Measure { .. } => 18,
        Command::UseMeasured { .. } => 19,
        Command::DebugLoseGpu => 20,
        Command::CheckData => 21,
        Command::Compare => 22,
        Command::UseCompareModel { .. } => 23,
        Command::LrFind => 24,
        Command::Interpret => 25,
        Command::Saliency { .. } => 26,
        Command::Map => 27,
        Command::Knowledge => 28,
        Command::StartFrom => 29,
        Command::StartFromImagenet => 30,
        Command::CompareBackbones => 31,
        Command::TimeBackbones => 32,
    }
}
const COMMANDS: usize = 33;

fn event_variant(e: &Event) -> usize {
    match e {
        Event::Ready => 0,
        Event::Boot(_) => 1,
        Event::Compute(_) => 2,
        Event::Project(_) => 3,
        Event::Added { .. } => 4,
        Event::Refused { .. } => 5,
        Event::ClassCreated { .. } => 6,
        Event::Ingest { .. } => 7,
        Event::Train(_) => 8,
        Event::RunEnded { .. } => 9,
        Event::Model { .. } => 10,
        Event::Prediction { .. } => 11,
        Event::PredictFailed { .. } => 12,
        Event::Download { .. } => 13,
        Event::Storage { .. } => 14,
        Event::Memory { .. } => 15,
        Event::Notice { .. } => 16,
        Event::Crashed { .. } => 17,
        Event::Job { .. } => 18,
        Event::TakenOver => 19,
        Event::Bench { .. } => 20,
        Event::KernelChecks { .. } => 21,
        Event::Measuring { .. } => 22,
        Event::Measured { .. } => 23,
        Event::LabProgress(_) => 24,
        Event::Findings { .. } => 25,
        Event::Compare(_) => 26,
        Event::CompareDone => 27,
        Event::LrFinder(_) => 28,
        Event::Interpretation { .. } => 29,
        Event::Saliency { .. } => 30,
        Event::Map { .. } => 31,
        Event::Knowledge(_) => 32,
        Event::BackboneCompare(_) => 33,
        Event::BackboneCompareDone { .. } => 34,
        Event::BackboneSpeed { .. } => 35,
    }
}
const EVENTS: usize = 36;

fn frame() -> Frame {
    Frame { width: 2, height: 1, rgba: vec![1, 2, 3, 255, 4, 5, 6, 255] }
}

fn model_info() -> ModelInfo {
    ModelInfo {
        classes: vec!["cat".into(), "dog".into()],
        status: ModelStatus::Stopped { completed_epochs: 2, epochs: 5 },
        description: "stopped after 2 of 5 epochs".into(),
        val_accuracy: Some(0.75),
        resumable: true,
    }
}

fn commands() -> Vec<Command> {
    vec![
        Command::SelectBackend { backend: BackendChoice::Webgpu },
        Command::AddClass { name: "cat".into() },
        Command::RenameClass { id: 1, name: "dog".into() },
        Command::RemoveClass { id: 2 },
        Command::AddFiles { class_id: 0, names: vec!["a.jpg".into(), "folder/b.png".into()] },
        Command::AddFolder { name: "birds".into(), names: vec!["birds/x.jpg".into()] },
        Command::AddFrames { class_id: 1, frames: vec![frame()] },
        Command::SetSettings { settings: Settings::default() },
        Command::Train { resume: true },
        Command::Stop,
        Command::Predict { request: 7, source: PredictSource::Frame(frame()) },
        Command::Predict { request: 8, source: PredictSource::File },
        Command::Export { format: ExportFormat::Onnx },
        Command::SaveProject,
        Command::DownloadPictures,
        Command::OpenProject,
        Command::StartFrom,
        Command::StartFromImagenet,
        Command::NewProject,
        Command::Bench { batches: vec![4, 16], iterations: 3 },
        Command::CheckKernels,
        Command::Measure { best_frozen: Some(21.5), best_discriminative: None },
        Command::UseMeasured { backends: ModeBackends { frozen: Backend::Cpu, discriminative: Backend::Webgpu } },
        Command::DebugLoseGpu,
        Command::CheckData,
        Command::Compare,
        Command::CompareBackbones,
        Command::TimeBackbones,
        Command::UseCompareModel { index: 2 },
        Command::LrFind,
        Command::Interpret,
        Command::Saliency { source: PredictSource::File },
        Command::Map,
        Command::Knowledge,
    ]
}

fn events() -> Vec<Event> {
    vec![
        Event::Ready,
        Event::Boot(BootStage::Downloading { loaded: 10, total: Some(100) }),
        Event::Boot(BootStage::Failed { message: "no network".into() }),
        Event::Compute(ComputeInfo::default()),
        Event::Project(ProjectView {
            classes: vec![ClassView { id: 0, name: "cat".into(), count: 3 }],
            settings: Settings::default(),
            model: Some(model_info()),
            start_from: Some("my-model.zip".into()),
        }),
        Event::Added { class_id: 0, thumbs: thumbs(vec![(4, vec![0xff, 0xd8])]), count: 5 },
        Event::Refused {
            class_id: 0,
            problems: vec![FileProblem { file: "x.txt".into(), reason: "not an image".into() }],
        },
        Event::ClassCreated { id: 3, name: "birds".into() },
        Event::Ingest { done: 3, total: 9 },
        Event::Train(TrainEvent::Phase { phase: PhaseKind::ExtractingFeatures }),
        Event::RunEnded { outcome: RunOutcome::Cancelled { completed_epochs: 1 }, description: "stopped".into() },
        Event::RunEnded {
            outcome: RunOutcome::Failed { reason: FailureReason::Diverged, message: "NaN".into() },
            description: "failed".into(),
        },
        Event::Model { model: None },
        Event::Prediction { request: 7, classes: vec!["cat".into()], probabilities: vec![0.9] },
        Event::PredictFailed { request: 8, message: "not an image".into() },
        Event::Download { name: "model.zip".into(), mime: "application/zip".into(), bytes: vec![0x50, 0x4b, 3, 4] },
        Event::Storage { used: Some(1e6), quota: None, saved_images: 12 },
        Event::Memory { wasm_bytes: 6.5e7 },
        Event::Notice { level: Level::Warning, message: "busy".into() },
        Event::Crashed { message: "panicked".into() },
        Event::Job { running: Some(JobKind::LrFind) },
        Event::Job { running: None },
        Event::TakenOver,
        Event::Bench { report: Err("the backbone is not loaded".into()), backend: "CPU (wasm)".into() },
        Event::KernelChecks { checks: Ok(Vec::new()) },
        Event::Measuring { what: "WebGPU, frozen".into() },
        Event::BackboneSpeed {
            arch: Architecture::EfficientNetLite0,
            engine: "CPU · 2 threads".into(),
            speed: SpeedReading {
                frozen: ModeSpeed { images_per_sec: Some(31.5), batch: 16, cut_short: None },
                discriminative: ModeSpeed { images_per_sec: Some(6.25), batch: 4, cut_short: None },
                seconds: 4.5,
            },
        },
        Event::Measured {
            timings: vec![CandidateTiming {
                candidate: Candidate::CpuThreads,
                threads: 8,
                speed: None,
                refused: Some("no threads".into()),
            }],
            seconds: 3.5,
        },
        Event::LabProgress(LabProgress { what: "sweeping".into(), done: 1, total: 40 }),
        Event::Findings { findings: vec![FindingView { text: "a finding".into(), thumbs: Vec::new() }] },
        Event::Compare(CompareEvent::Started {
            index: 0,
            of: 4,
            lesson: Lesson::FrozenReplace,
            label: "frozen".into(),
        }),
        Event::Compare(CompareEvent::Train {
            index: 1,
            run_event: TrainEvent::Phase { phase: PhaseKind::TrainingHead },
        }),
        Event::CompareDone,
        Event::BackboneCompare(BackboneCompareEvent::Started {
            index: 1,
            of: 2,
            arch: graft_model::Architecture::EfficientNetLite0,
        }),
        Event::BackboneCompareDone { verdict: "a tie".into() },
        Event::LrFinder(LrFinderResult {
            lrs: vec![1e-5, 1e-4],
            losses: vec![1.1, 0.9],
            smoothed: vec![1.1, 1.0],
            suggestion: Some(1e-4),
            diverged: false,
        }),
        Event::Interpretation {
            classes: vec!["cat".into(), "dog".into()],
            accuracy: 0.5,
            confusion: vec![vec![1, 1], vec![0, 2]],
            pairs: vec!["cat taken for dog".into()],
            pictures: vec![ValPicture {
                id: 9,
                name: "webcam-1.jpg".into(),
                label: 0,
                predicted: 1,
                confidence: 0.6,
                loss: 0.9,
                top_loss_rank: Some(0),
                thumb: serde_bytes::ByteBuf::from(vec![1, 2]),
            }],
        },
        Event::Saliency { side: 7, heat: vec![0.5; 49], class: "cat".into(), probability: 0.8 },
        Event::Map {
            classes: vec!["cat".into()],
            points: vec![MapPoint { id: 1, label: 0, before: [0.1, 0.2], after: None }],
        },
        Event::Knowledge(Knowledge { imagenet_agreement: Some(0.42), layer_change: vec![0.1, 0.2] }),
    ]
}

#[test]
fn every_command_comes_back_unchanged() {
    let samples = commands();
    samples.iter().for_each(round_trip);
    let mut seen: Vec<usize> = samples.iter().map(command_variant).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..COMMANDS).collect::<Vec<_>>(), "a command without a sample");
}

#[test]
fn every_event_comes_back_unchanged() {
    let samples = events();
    samples.iter().for_each(round_trip);
    let mut seen: Vec<usize> = samples.iter().map(event_variant).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..EVENTS).collect::<Vec<_>>(), "an event without a sample");
}

#[test]
fn the_tags_the_page_reads_are_where_it_reads_them() {
    let json = serde_json::to_value(Event::Train(TrainEvent::Phase { phase: PhaseKind::TrainingHead })).unwrap();
    assert_eq!(json["event"], "train", "{json}");
    let json = serde_json::to_value(Command::Train { resume: false }).unwrap();
    assert_eq!(json["cmd"], "train", "{json}");
    // Training mode on the wire is the same word everywhere (settings, manifests, CLI JSON).
    assert_eq!(serde_json::to_value(Mode::Discriminative).unwrap(), "discriminative");
}
