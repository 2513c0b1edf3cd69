//! The page's state: reactive signals mirroring what the engine worker reports. Nothing here
//! computes; the worker owns the project and the models.

use graft_model::Architecture;
use graft_project::{HeadChoice, Settings};
use graft_train::{EpochMetrics, Evaluation, Mode, PhaseKind, TrainConfig};
use leptos::prelude::*;
use serde::Serialize;

use graft::protocol::{BackendChoice, ComputeInfo, FileProblem, GpuCheck, ModelInfo};

use crate::page::choice::Measured;

#[derive(Debug, Clone, PartialEq)]
pub enum Boot {
    Starting(String),
    Loading { loaded: u64, total: Option<u64> },
    Restoring,
    Ready,
    Failed(String),
}

/// One picture shown on a card: its id and an object URL of its thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbUrl {
    pub id: u64,
    pub url: String,
}

thread_local! {
    static NEXT_CARD_KEY: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One class card.
#[derive(Debug, Clone, Copy)]
pub struct ClassCard {
    /// Unique per card object: a new project reuses class ids, and the list must re-render.
    pub key: u64,
    pub id: u32,
    pub name: RwSignal<String>,
    /// The latest thumbnails (at most a few dozen: the count says how many there are).
    pub thumbs: RwSignal<Vec<ThumbUrl>>,
    pub errors: RwSignal<Vec<FileProblem>>,
    pub count: RwSignal<usize>,
    /// Why the name cannot be used (empty, duplicate), shown next to it.
    pub name_error: RwSignal<Option<String>>,
    /// Webcam panel open on this card.
    pub camera_open: RwSignal<bool>,
}

impl ClassCard {
    pub fn new(id: u32, name: &str) -> Self {
        let key = NEXT_CARD_KEY.with(|k| {
            let key = k.get();
            k.set(key + 1);
            key
        });
        Self {
            key,
            id,
            name: RwSignal::new(name.to_string()),
            thumbs: RwSignal::new(Vec::new()),
            errors: RwSignal::new(Vec::new()),
            count: RwSignal::new(0),
            name_error: RwSignal::new(None),
            camera_open: RwSignal::new(false),
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
    pub backbone: RwSignal<Architecture>,
}

impl SettingsForm {
    fn new(s: &Settings) -> Self {
        let t = &s.train;
        Self {
            mode: RwSignal::new(t.mode),
            head: RwSignal::new(s.head),
            epochs: RwSignal::new(t.epochs),
            lr: RwSignal::new(t.lr),
            ratio: RwSignal::new(t.backbone_ratio),
            batch: RwSignal::new(t.batch_size),
            warmup: RwSignal::new(t.warmup_epochs),
            augment: RwSignal::new(t.augment.is_some()),
            val_split: RwSignal::new(t.val_fraction),
            seed: RwSignal::new(t.seed),
            layer_groups: RwSignal::new(t.layer_groups),
            backbone: RwSignal::new(t.backbone),
        }
    }

    /// Shows settings the worker restored.
    pub fn load(&self, s: &Settings) {
        let t = &s.train;
        self.mode.set(t.mode);
        self.head.set(s.head);
        self.epochs.set(t.epochs);
        self.lr.set(t.lr);
        self.ratio.set(t.backbone_ratio);
        self.batch.set(t.batch_size);
        self.warmup.set(t.warmup_epochs);
        self.augment.set(t.augment.is_some());
        self.val_split.set(t.val_fraction);
        self.seed.set(t.seed);
        self.layer_groups.set(t.layer_groups);
        self.backbone.set(t.backbone);
    }

    /// The settings as the engine takes them.
    pub fn settings(&self) -> Settings {
        let d = TrainConfig::default();
        Settings {
            train: TrainConfig {
                mode: self.mode.get_untracked(),
                epochs: self.epochs.get_untracked(),
                lr: self.lr.get_untracked(),
                backbone_ratio: self.ratio.get_untracked(),
                layer_groups: self.layer_groups.get_untracked(),
                warmup_epochs: self.warmup.get_untracked(),
                batch_size: self.batch.get_untracked(),
                val_fraction: self.val_split.get_untracked(),
                augment: if self.augment.get_untracked() { d.augment.or(Some(Default::default())) } else { None },
                seed: self.seed.get_untracked(),
                backbone: self.backbone.get_untracked(),
                ..d
            },
            head: self.head.get_untracked(),
        }
    }
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

/// What a progress bar shows.
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
    pub backend: RwSignal<Option<graft::protocol::Backend>>,
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
    /// How the run ended and what was kept, in words.
    pub outcome: RwSignal<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub class: String,
    pub probability: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoticeLine {
    pub error: bool,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StorageInfo {
    pub used: Option<f64>,
    pub quota: Option<f64>,
    pub saved_images: usize,
    pub persisted: Option<bool>,
    /// The service worker holds this build for offline use (`Some(false)`: it could not).
    pub offline: Option<bool>,
}

/// A validation picture shown by the interpretation views.
#[derive(Debug, Clone, PartialEq)]
pub struct ValPictureView {
    pub id: u64,
    pub name: String,
    pub label: usize,
    pub predicted: usize,
    pub confidence: f32,
    pub top_loss_rank: Option<usize>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterpretationView {
    pub classes: Vec<String>,
    pub accuracy: f32,
    pub confusion: Vec<Vec<u32>>,
    pub pairs: Vec<String>,
    pub pictures: Vec<ValPictureView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyView {
    pub side: usize,
    pub heat: Vec<f32>,
    pub class: String,
    pub probability: f32,
    pub picture: Option<String>,
}

/// A data-check finding in words and the thumbnails of the pictures concerned.
pub type FindingLine = (String, Vec<ThumbUrl>);

/// The teaching lab's results, as the worker reports them.
#[derive(Debug, Clone, Copy)]
pub struct LabState {
    pub progress: RwSignal<Option<graft::protocol::LabProgress>>,
    pub findings: RwSignal<Option<Vec<FindingLine>>>,
    pub compare_rows: RwSignal<Vec<graft_lab::CompareRow>>,
    pub compare_status: RwSignal<Option<String>>,
    pub compare_running: RwSignal<bool>,
    pub backbone_rows: RwSignal<Vec<graft_lab::BackboneRow>>,
    pub backbone_status: RwSignal<Option<String>>,
    pub backbone_running: RwSignal<bool>,
    pub lr_finder: RwSignal<Option<graft_lab::LrFinderResult>>,
    pub interpretation: RwSignal<Option<InterpretationView>>,
    pub selected_cell: RwSignal<Option<(usize, usize)>>,
    pub saliency: RwSignal<Option<SaliencyView>>,
    pub map: RwSignal<Option<(Vec<String>, Vec<graft::protocol::MapPoint>)>>,
    pub map_after: RwSignal<bool>,
    pub knowledge: RwSignal<Option<graft::protocol::Knowledge>>,
}

impl LabState {
    fn new() -> Self {
        Self {
            progress: RwSignal::new(None),
            findings: RwSignal::new(None),
            compare_rows: RwSignal::new(Vec::new()),
            compare_status: RwSignal::new(None),
            compare_running: RwSignal::new(false),
            backbone_rows: RwSignal::new(Vec::new()),
            backbone_status: RwSignal::new(None),
            backbone_running: RwSignal::new(false),
            lr_finder: RwSignal::new(None),
            interpretation: RwSignal::new(None),
            selected_cell: RwSignal::new(None),
            saliency: RwSignal::new(None),
            map: RwSignal::new(None),
            map_after: RwSignal::new(false),
            knowledge: RwSignal::new(None),
        }
    }
}

/// Where the engine choice's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceSource {
    /// Measured in this session.
    Measured,
    /// Remembered from an earlier start of this browser (same adapter, cores and build).
    Stored,
}

impl ChoiceSource {
    pub fn key(self) -> &'static str {
        match self {
            ChoiceSource::Measured => "measured",
            ChoiceSource::Stored => "stored",
        }
    }
}

/// The engine choice: the figures per candidate and mode, and WebGPU's start-up check.
#[derive(Debug, Clone, Copy)]
pub struct ChoiceState {
    /// What the figures hold for (adapter, cores, isolation, build).
    pub key: RwSignal<String>,
    pub measured: RwSignal<Option<Measured>>,
    pub source: RwSignal<Option<ChoiceSource>>,
    /// While measuring: what is being measured (the app waits for it).
    pub measuring: RwSignal<Option<String>>,
    /// WebGPU's start-up check in this session (from whichever engine ran it).
    pub gpu_check: RwSignal<Option<GpuCheck>>,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub boot: RwSignal<Boot>,
    /// The engine's running job, if any (`worker::jobs`).
    pub job: RwSignal<Option<graft::protocol::JobKind>>,
    /// Whether this tab owns the saved project (`page::tab`).
    pub tab: RwSignal<crate::page::tab::TabOwnership>,
    pub compute: RwSignal<ComputeInfo>,
    pub backend_choice: RwSignal<BackendChoice>,
    pub classes: RwSignal<Vec<ClassCard>>,
    pub settings: SettingsForm,
    pub run: RunView,
    pub model: RwSignal<Option<ModelInfo>>,
    pub predictions: RwSignal<Vec<PredictionRow>>,
    pub predict_error: RwSignal<Option<String>>,
    pub predict_thumb: RwSignal<Option<String>>,
    /// Live webcam prediction: on/off, and how many predictions arrived.
    pub live: RwSignal<bool>,
    pub live_count: RwSignal<u32>,
    pub ingest: RwSignal<Option<(usize, usize)>>,
    pub notices: RwSignal<Vec<NoticeLine>>,
    pub restored: RwSignal<Option<String>>,
    /// The starting checkpoint new runs start from (its file name), or `None` for ImageNet.
    pub start_from: RwSignal<Option<String>>,
    pub storage: RwSignal<StorageInfo>,
    pub wasm_memory: RwSignal<Option<f64>>,
    pub show_how: RwSignal<bool>,
    pub show_bench: RwSignal<bool>,
    pub bench: RwSignal<Option<Result<(String, graft_train::BenchReport), String>>>,
    pub bench_running: RwSignal<bool>,
    /// graft's GPU kernels checked on WebGPU (the bench page's "check kernels"); `None` while
    /// none ran (or one runs).
    pub kernel_checks: RwSignal<Option<Result<Vec<graft_model::kernel_check::KernelCheck>, String>>>,
    /// Each backbone's speed on the engine in use ("time both here" in the settings).
    pub backbone_speeds: RwSignal<Vec<(graft_model::Architecture, String, graft_train::SpeedReading)>>,
    pub engine_restarts: RwSignal<u32>,
    /// Which engine worker runs (set when it is started).
    pub engine_kind: RwSignal<Option<crate::page::client::EngineKind>>,
    /// Engines are being switched for a run: the page stays as it is meanwhile.
    pub quiet_switch: RwSignal<bool>,
    pub choice: ChoiceState,
    pub lab: LabState,
    /// The link to the engine worker (set once at start-up).
    pub engine: StoredValue<Option<crate::page::client::EngineLink>, LocalStorage>,
}

impl AppState {
    pub fn new() -> Self {
        let defaults = graft_project::Project::default();
        Self {
            boot: RwSignal::new(Boot::Starting("starting the engine".into())),
            tab: RwSignal::new(crate::page::tab::TabOwnership::Asking),
            job: RwSignal::new(None),
            compute: RwSignal::new(ComputeInfo::default()),
            backend_choice: RwSignal::new(BackendChoice::Auto),
            classes: RwSignal::new(Vec::new()),
            settings: SettingsForm::new(&defaults.settings),
            run: RunView {
                status: RwSignal::new(RunStatus::Idle),
                mode: RwSignal::new(Mode::Frozen),
                backend: RwSignal::new(None),
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
                outcome: RwSignal::new(None),
            },
            model: RwSignal::new(None),
            predictions: RwSignal::new(Vec::new()),
            predict_error: RwSignal::new(None),
            predict_thumb: RwSignal::new(None),
            live: RwSignal::new(false),
            live_count: RwSignal::new(0),
            ingest: RwSignal::new(None),
            notices: RwSignal::new(Vec::new()),
            restored: RwSignal::new(None),
            start_from: RwSignal::new(None),
            storage: RwSignal::new(StorageInfo::default()),
            wasm_memory: RwSignal::new(None),
            show_how: RwSignal::new(false),
            show_bench: RwSignal::new(false),
            bench: RwSignal::new(None),
            bench_running: RwSignal::new(false),
            kernel_checks: RwSignal::new(None),
            backbone_speeds: RwSignal::new(Vec::new()),
            engine_restarts: RwSignal::new(0),
            engine_kind: RwSignal::new(None),
            quiet_switch: RwSignal::new(false),
            choice: ChoiceState {
                key: RwSignal::new(String::new()),
                measured: RwSignal::new(None),
                source: RwSignal::new(None),
                measuring: RwSignal::new(None),
                gpu_check: RwSignal::new(None),
            },
            lab: LabState::new(),
            engine: StoredValue::new_local(None),
        }
    }

    /// The app is usable: the engine is ready and the engines are measured (a run's engine
    /// switch keeps it usable).
    pub fn usable(&self) -> bool {
        (self.boot.get() == Boot::Ready || self.quiet_switch.get())
            && self.choice.measuring.get().is_none()
            && self.tab.get() == crate::page::tab::TabOwnership::Owner
    }

    /// Sends a command to the engine worker.
    pub fn send(&self, command: &graft::protocol::Command) {
        self.engine.with_value(|e| {
            if let Some(e) = e {
                e.send(command)
            }
        });
    }

    /// Sends a command with files beside it.
    pub fn send_files(&self, command: &graft::protocol::Command, files: &js_sys::Array) {
        self.engine.with_value(|e| {
            if let Some(e) = e {
                e.send_with_files(command, files)
            }
        });
    }

    /// The settings form changed: the engine keeps (and saves) them.
    pub fn settings_changed(&self) {
        self.send(&graft::protocol::Command::SetSettings { settings: self.settings.settings() });
    }

    pub fn card(&self, id: u32) -> Option<ClassCard> {
        self.classes.with_untracked(|c| c.iter().find(|c| c.id == id).copied())
    }

    pub fn notice(&self, error: bool, text: impl Into<String>) {
        let text = text.into();
        self.notices.update(|n| {
            n.push(NoticeLine { error, text });
            // The latest few are enough on screen.
            let excess = n.len().saturating_sub(8);
            n.drain(..excess);
        });
    }
}
