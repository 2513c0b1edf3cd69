//! App state: reactive signals for the UI, plus non-reactive engine data (images, devices,
//! weights, the trained model) kept in a local store.

use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::Device;
use graft_data::{Dataset, FileError};
use graft_model::{ImageClassifier, WeightMap};
use graft_train::{CancelToken, EpochMetrics, Evaluation, Manifest, Mode, PhaseKind};
use leptos::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Boot {
    Starting(String),
    Loading { loaded: u64, total: Option<u64> },
    Probing,
    Ready,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Webgpu,
    Cpu,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Webgpu => "WebGPU",
            Backend::Cpu => "CPU (wasm)",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComputeInfo {
    /// WebGPU adapter description, or why WebGPU is unavailable.
    pub adapter: Option<String>,
    pub webgpu_error: Option<String>,
    pub fallback_adapter: bool,
    /// Measured backbone images/s at start-up.
    pub webgpu_speed: Option<f32>,
    pub cpu_speed: Option<f32>,
    /// What the measurement picked.
    pub auto_choice: Option<Backend>,
}

/// One class card.
#[derive(Debug, Clone, Copy)]
pub struct ClassCard {
    pub id: u32,
    pub name: RwSignal<String>,
    pub thumbs: RwSignal<Vec<String>>,
    pub errors: RwSignal<Vec<FileError>>,
    pub count: RwSignal<usize>,
}

impl ClassCard {
    pub fn new(id: u32, name: &str) -> Self {
        Self {
            id,
            name: RwSignal::new(name.to_string()),
            thumbs: RwSignal::new(Vec::new()),
            errors: RwSignal::new(Vec::new()),
            count: RwSignal::new(0),
        }
    }
}

/// Training settings as edited in the form.
#[derive(Debug, Clone, Copy)]
pub struct SettingsForm {
    pub mode: RwSignal<Mode>,
    pub head: RwSignal<HeadChoice>,
    pub epochs: RwSignal<usize>,
    pub lr: RwSignal<f64>,
    pub ratio: RwSignal<f64>,
    pub batch: RwSignal<usize>,
    pub warmup: RwSignal<usize>,
    pub augment: RwSignal<bool>,
    pub val_split: RwSignal<f32>,
    pub seed: RwSignal<u64>,
    pub layer_groups: RwSignal<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadChoice {
    Replace,
    Stacked,
    KeepImagenet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Idle,
    Running,
    Done,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Idle => "idle",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepPoint {
    pub epoch: usize,
    pub step: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub images_per_sec: f32,
}

/// What the progress bar shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub fraction: f32,
    pub text: String,
}

/// Reactive view of the latest training run, fed by the trainer's event stream.
#[derive(Debug, Clone, Copy)]
pub struct RunView {
    pub status: RwSignal<RunStatus>,
    pub mode: RwSignal<Mode>,
    pub backend: RwSignal<Backend>,
    pub phase: RwSignal<Option<PhaseKind>>,
    /// Every phase the run went through, in order.
    pub phases: RwSignal<Vec<PhaseKind>>,
    pub progress: RwSignal<Progress>,
    pub steps: RwSignal<Vec<StepPoint>>,
    pub epochs: RwSignal<Vec<EpochMetrics>>,
    pub evaluation: RwSignal<Option<Evaluation>>,
    pub classes: RwSignal<Vec<String>>,
    pub images_per_sec: RwSignal<f32>,
    /// Backbone feature extraction speed (frozen mode), from the latest `Extract` event.
    pub extract_images_per_sec: RwSignal<Option<f32>>,
    pub warnings: RwSignal<Vec<String>>,
    pub error: RwSignal<Option<String>>,
}

/// Engine-side data that is not reactive (and not `Send`).
#[derive(Default)]
pub struct EngineStore {
    pub pretrained: Option<Rc<WeightMap>>,
    pub webgpu: Option<Device>,
    /// Decoded images of each class card (card id → a one-class dataset).
    pub images: HashMap<u32, Dataset>,
    pub trained: Option<Trained>,
    pub cancel: Option<CancelToken>,
}

pub struct Trained {
    pub model: ImageClassifier,
    pub manifest: Manifest,
    pub device: Device,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionRow {
    pub class: usize,
    pub probability: f32,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub boot: RwSignal<Boot>,
    pub compute: RwSignal<ComputeInfo>,
    /// User override of the measured choice (`None` = automatic).
    pub backend_override: RwSignal<Option<Backend>>,
    pub classes: RwSignal<Vec<ClassCard>>,
    pub next_class_id: RwSignal<u32>,
    pub settings: SettingsForm,
    pub run: RunView,
    pub predictions: RwSignal<Vec<PredictionRow>>,
    pub predict_error: RwSignal<Option<String>>,
    pub predict_thumb: RwSignal<Option<String>>,
    pub has_model: RwSignal<bool>,
    pub show_how: RwSignal<bool>,
    pub show_bench: RwSignal<bool>,
    pub engine: StoredValue<EngineStore, LocalStorage>,
}

impl AppState {
    pub fn new() -> Self {
        let d = graft_train::TrainConfig::default();
        Self {
            boot: RwSignal::new(Boot::Starting("starting".into())),
            compute: RwSignal::new(ComputeInfo::default()),
            backend_override: RwSignal::new(None),
            classes: RwSignal::new(vec![ClassCard::new(0, "class 1"), ClassCard::new(1, "class 2")]),
            next_class_id: RwSignal::new(2),
            settings: SettingsForm {
                mode: RwSignal::new(Mode::Frozen),
                head: RwSignal::new(HeadChoice::Replace),
                epochs: RwSignal::new(d.epochs),
                lr: RwSignal::new(d.lr),
                ratio: RwSignal::new(d.backbone_ratio),
                batch: RwSignal::new(d.batch_size),
                warmup: RwSignal::new(d.warmup_epochs),
                augment: RwSignal::new(true),
                val_split: RwSignal::new(d.val_fraction),
                seed: RwSignal::new(d.seed),
                layer_groups: RwSignal::new(false),
            },
            run: RunView {
                status: RwSignal::new(RunStatus::Idle),
                mode: RwSignal::new(Mode::Frozen),
                backend: RwSignal::new(Backend::Cpu),
                phase: RwSignal::new(None),
                phases: RwSignal::new(Vec::new()),
                progress: RwSignal::new(Progress::default()),
                steps: RwSignal::new(Vec::new()),
                epochs: RwSignal::new(Vec::new()),
                evaluation: RwSignal::new(None),
                classes: RwSignal::new(Vec::new()),
                images_per_sec: RwSignal::new(0.0),
                extract_images_per_sec: RwSignal::new(None),
                warnings: RwSignal::new(Vec::new()),
                error: RwSignal::new(None),
            },
            predictions: RwSignal::new(Vec::new()),
            predict_error: RwSignal::new(None),
            predict_thumb: RwSignal::new(None),
            has_model: RwSignal::new(false),
            show_how: RwSignal::new(false),
            show_bench: RwSignal::new(false),
            engine: StoredValue::new_local(EngineStore::default()),
        }
    }

    /// The backend training and prediction use: the user's override, else the measured choice.
    pub fn backend(&self) -> Backend {
        self.backend_override.get_untracked().or(self.compute.get_untracked().auto_choice).unwrap_or(Backend::Cpu)
    }

    pub fn device(&self, backend: Backend) -> Option<Device> {
        match backend {
            Backend::Cpu => Some(Device::flex()),
            Backend::Webgpu => self.engine.with_value(|e| e.webgpu.clone()),
        }
    }
}
