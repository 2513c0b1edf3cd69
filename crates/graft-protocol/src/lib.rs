//! The messages between the page and the engine worker. The page sends [`Command`]s and renders
//! [`Event`]s; the worker owns the project, the models and the trainer. Training progress is the
//! engine's own `TrainEvent`, the same stream the CLI prints.
//!
//! On the wire a message is a JS object `{ msg, files }`: `msg` is the serde value (through
//! serde-wasm-bindgen, byte buffers as `Uint8Array`), `files` an optional array of `File`s
//! that travel beside it (structured clone, no copy).

use graft_lab::{BackboneCompareEvent, CompareEvent, LrFinderResult};
use graft_model::kernel_check::KernelCheck;
use graft_model::Architecture;
use graft_project::{ModelStatus, Settings};
use graft_train::{BenchReport, Mode, QuantityDiff, RunOutcome, SpeedReading, Tolerance, TrainEvent};
use serde::{Deserialize, Serialize};

/// Which compute backend runs training and prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// The fastest measured, per mode (the page measures once per browser and remembers it).
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A backend per training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeBackends {
    pub frozen: Backend,
    pub discriminative: Backend,
}

impl ModeBackends {
    pub fn get(self, mode: Mode) -> Backend {
        match mode {
            Mode::Frozen => self.frozen,
            Mode::Discriminative => self.discriminative,
        }
    }
}

/// What the page can run: WebGPU and the CPU on one thread (the WebGPU engine), or the CPU on
/// every core (the multi-threaded engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Candidate {
    Webgpu,
    CpuOne,
    CpuThreads,
}

impl Candidate {
    pub const ALL: [Candidate; 3] = [Candidate::Webgpu, Candidate::CpuThreads, Candidate::CpuOne];

    pub fn backend(self) -> Backend {
        match self {
            Candidate::Webgpu => Backend::Webgpu,
            Candidate::CpuOne | Candidate::CpuThreads => Backend::Cpu,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Candidate::Webgpu => "webgpu",
            Candidate::CpuOne => "cpu_one",
            Candidate::CpuThreads => "cpu_threads",
        }
    }
}

/// One candidate's figures, as an engine measured them (see [`Command::Measure`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateTiming {
    pub candidate: Candidate,
    /// CPU threads it computes on (1 for WebGPU).
    pub threads: usize,
    pub speed: Option<SpeedReading>,
    /// Why it was not measured (WebGPU refused by its start-up check, an engine that did not
    /// start, a failure while timing).
    pub refused: Option<String>,
}

impl CandidateTiming {
    pub fn label(&self) -> String {
        match self.candidate {
            Candidate::Webgpu => "WebGPU".into(),
            Candidate::CpuOne => "CPU 1 thread".into(),
            Candidate::CpuThreads => format!("CPU {} threads", self.threads),
        }
    }

    /// Images per second in `mode`, when measured.
    pub fn figure(&self, mode: Mode) -> Option<f32> {
        let speed = self.speed.as_ref()?;
        match mode {
            Mode::Frozen => speed.frozen.images_per_sec,
            Mode::Discriminative => speed.discriminative.images_per_sec,
        }
    }
}

/// The start-up check of WebGPU's answers: one training step of the model on WebGPU inside
/// WebGPU error scopes, compared with the same step on the CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuCheck {
    pub passed: bool,
    /// In words: the closest call, or what differed, or the error WebGPU reported.
    pub summary: String,
    /// The quantity closest to (or furthest past) its allowance; none after an error.
    pub worst: Option<QuantityDiff>,
    pub tolerance: Tolerance,
    /// Both steps (CPU and WebGPU) and the comparison.
    pub seconds: f32,
}

/// RGBA pixels of one webcam frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
}

/// What to classify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PredictSource {
    /// The first file of the message.
    File,
    Frame(Frame),
}

/// What "Export" downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportFormat {
    /// `model.safetensors` (torchvision names) + `labels.json` + `manifest.json`, zipped.
    Zip,
    /// One ONNX model (see `graft_train::onnx`).
    Onnx,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    SelectBackend {
        backend: BackendChoice,
    },
    AddClass {
        name: String,
    },
    RenameClass {
        id: u32,
        name: String,
    },
    RemoveClass {
        id: u32,
    },
    /// The message's files, for class `class_id`; `names` are their display names (paths
    /// inside a dropped folder).
    AddFiles {
        class_id: u32,
        names: Vec<String>,
    },
    /// A dropped folder: a new class named `name` (or an empty default card) gets the files.
    AddFolder {
        name: String,
        names: Vec<String>,
    },
    AddFrames {
        class_id: u32,
        frames: Vec<Frame>,
    },
    SetSettings {
        settings: Settings,
    },
    /// `resume`: continue from the kept model (same classes) instead of a new head.
    Train {
        resume: bool,
    },
    Stop,
    Predict {
        request: u32,
        source: PredictSource,
    },
    Export {
        format: ExportFormat,
    },
    SaveProject,
    /// The pictures as a zip of class folders.
    DownloadPictures,
    /// The message's first file is a project file.
    OpenProject,
    /// The message's first file is a starting checkpoint (a graft export or project file, a
    /// MobileNetV2 state_dict as safetensors): new runs start from its backbone.
    StartFrom,
    /// New runs start from ImageNet's weights again.
    StartFromImagenet,
    NewProject,
    Bench {
        batches: Vec<usize>,
        iterations: usize,
    },
    /// Check graft's GPU kernels against their definition on WebGPU (answered by
    /// [`Event::KernelChecks`]).
    CheckKernels,
    /// Time each backend this engine runs, in both modes (answered by [`Event::Measured`]).
    /// `best_*`: the fastest figures measured so far elsewhere, to cut a far slower one short.
    Measure {
        best_frozen: Option<f32>,
        best_discriminative: Option<f32>,
    },
    /// Times each backbone's frozen and discriminative work on the backend in use (random
    /// weights of its shape: the speed does not depend on the values, and nothing is
    /// downloaded), for the backbone chooser's "expected speed here".
    TimeBackbones,
    /// The page's measured choice of backend per mode within this engine (for "automatic").
    UseMeasured {
        backends: ModeBackends,
    },
    /// Testing aid: destroys the WebGPU device, as a driver reset or out-of-memory would.
    DebugLoseGpu,
    // The teaching lab.
    CheckData,
    Compare,
    UseCompareModel {
        index: usize,
    },
    /// The same data, split, seed and settings trained on each backbone.
    CompareBackbones,
    LrFind,
    Interpret,
    Saliency {
        source: PredictSource,
    },
    Map,
    Knowledge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum BootStage {
    Starting { message: String },
    Downloading { loaded: u64, total: Option<u64> },
    Restoring,
    Ready,
    Failed { message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComputeInfo {
    /// WebGPU adapter description, or why WebGPU is unavailable.
    pub adapter: Option<String>,
    pub webgpu_error: Option<String>,
    pub fallback_adapter: bool,
    /// The start-up check of WebGPU's answers: running (WebGPU is not offered meanwhile), and
    /// its result (none without a WebGPU device to check).
    pub gpu_checking: bool,
    pub gpu_check: Option<GpuCheck>,
    /// Threads the CPU backend computes on: 1 in the WebGPU engine, every core in the
    /// multi-threaded engine.
    pub cpu_threads: usize,
    /// The measured choice per mode (sent by the page), what is in use for the project's mode,
    /// and the user's choice (which overrides the measured one).
    pub auto: Option<ModeBackends>,
    pub in_use: Option<Backend>,
    pub choice: BackendChoice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassView {
    pub id: u32,
    pub name: String,
    pub count: usize,
}

/// The kept model, for the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub classes: Vec<String>,
    pub status: ModelStatus,
    pub description: String,
    pub val_accuracy: Option<f32>,
    /// The settings can continue it (same classes, run not finished).
    pub resumable: bool,
}

/// A whole project, sent after start-up, Open and New.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectView {
    pub classes: Vec<ClassView>,
    pub settings: Settings,
    pub model: Option<ModelInfo>,
    /// The starting checkpoint's file name, when new runs start from one instead of ImageNet.
    #[serde(default)]
    pub start_from: Option<String>,
}

/// A thumbnail of a kept picture (JPEG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumb {
    pub id: u64,
    #[serde(with = "serde_bytes")]
    pub jpeg: Vec<u8>,
}

/// Thumbnails from `(id, jpeg)` pairs.
pub fn thumbs(pairs: Vec<(u64, Vec<u8>)>) -> Vec<Thumb> {
    pairs.into_iter().map(|(id, jpeg)| Thumb { id, jpeg }).collect()
}

/// A data-check finding in words, with the pictures it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    pub text: String,
    pub thumbs: Vec<Thumb>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabProgress {
    pub what: String,
    pub done: usize,
    pub total: usize,
}

/// What a trained backbone still knows of ImageNet, and how far each layer moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knowledge {
    pub imagenet_agreement: Option<f32>,
    pub layer_change: Vec<f32>,
}

/// One picture on the 2-D map: before (pretrained backbone) and after (the kept model's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    pub id: u64,
    pub label: usize,
    pub before: [f32; 2],
    pub after: Option<[f32; 2]>,
}

/// One validation picture after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValPicture {
    pub id: u64,
    pub name: String,
    pub label: usize,
    pub predicted: usize,
    pub confidence: f32,
    pub loss: f32,
    /// Its place among the most confidently wrong (0 = worst).
    pub top_loss_rank: Option<usize>,
    pub thumb: serde_bytes::ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProblem {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// What the engine's one running job is (see `worker::jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Train,
    Compare,
    CompareBackbones,
    LrFind,
    CheckData,
    Interpret,
    Knowledge,
    Map,
    Bench,
    CheckKernels,
    TimeBackbones,
}

impl JobKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Train => "a training run",
            Self::Compare => "Compare",
            Self::CompareBackbones => "the backbone comparison",
            Self::LrFind => "the LR finder",
            Self::CheckData => "the data checks",
            Self::Interpret => "the interpretation",
            Self::Knowledge => "what the backbone still knows",
            Self::Map => "the map",
            Self::Bench => "the benchmark",
            Self::CheckKernels => "the kernel checks",
            Self::TimeBackbones => "timing the backbones",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker listens; commands may be sent.
    Ready,
    Boot(BootStage),
    Compute(ComputeInfo),
    Project(ProjectView),
    /// Pictures kept in a class (their thumbnails) and its new count.
    Added {
        class_id: u32,
        thumbs: Vec<Thumb>,
        count: usize,
    },
    /// Files of a class that could not be used, and why.
    Refused {
        class_id: u32,
        problems: Vec<FileProblem>,
    },
    /// A dropped folder became this class.
    ClassCreated {
        id: u32,
        name: String,
    },
    /// Pictures being decoded and prepared.
    Ingest {
        done: usize,
        total: usize,
    },
    Train(TrainEvent),
    RunEnded {
        outcome: RunOutcome,
        description: String,
    },
    Model {
        model: Option<ModelInfo>,
    },
    Prediction {
        request: u32,
        classes: Vec<String>,
        probabilities: Vec<f32>,
    },
    PredictFailed {
        request: u32,
        message: String,
    },
    /// A file for the user to save (the page starts the download).
    Download {
        name: String,
        mime: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Browser storage: bytes used and available, whether the browser promised to keep them.
    Storage {
        used: Option<f64>,
        quota: Option<f64>,
        saved_images: usize,
    },
    /// Engine memory (wasm linear memory) after a large operation.
    Memory {
        wasm_bytes: f64,
    },
    Notice {
        level: Level,
        message: String,
    },
    /// The engine panicked; the page restarts it (the saved project is restored).
    Crashed {
        message: String,
    },
    /// The job the engine runs now (`None`: none; it is free for another).
    Job {
        running: Option<JobKind>,
    },
    /// Another tab's engine has claimed the saved project: this engine's writes are refused from
    /// now on (see `worker::idb`), and the page stops it.
    TakenOver,
    Bench {
        report: Result<BenchReport, String>,
        backend: String,
    },
    /// Every kernel check (see [`Command::CheckKernels`]), or why none ran.
    KernelChecks {
        checks: Result<Vec<KernelCheck>, String>,
    },
    /// Measuring one candidate (see [`Command::Measure`]).
    Measuring {
        what: String,
    },
    /// One backbone's figures on `engine` (answering [`Command::TimeBackbones`]).
    BackboneSpeed {
        arch: Architecture,
        engine: String,
        speed: SpeedReading,
    },
    /// This engine's figures (answering [`Command::Measure`]); `seconds`: what measuring cost.
    Measured {
        timings: Vec<CandidateTiming>,
        seconds: f32,
    },
    // The teaching lab.
    LabProgress(LabProgress),
    Findings {
        findings: Vec<FindingView>,
    },
    Compare(CompareEvent),
    CompareDone,
    BackboneCompare(BackboneCompareEvent),
    /// The comparison ended; its verdict, written from the table's numbers.
    BackboneCompareDone {
        verdict: String,
    },
    LrFinder(LrFinderResult),
    Interpretation {
        classes: Vec<String>,
        accuracy: f32,
        confusion: Vec<Vec<u32>>,
        pairs: Vec<String>,
        pictures: Vec<ValPicture>,
    },
    Saliency {
        side: usize,
        heat: Vec<f32>,
        class: String,
        probability: f32,
    },
    Map {
        classes: Vec<String>,
        points: Vec<MapPoint>,
    },
    Knowledge(Knowledge),
}
