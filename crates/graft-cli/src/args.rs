//! Command-line flags. Training defaults are read from `TrainConfig::default()`, never re-typed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use graft_model::Architecture;
use graft_train::{Mode, TrainConfig};

#[derive(Parser)]
#[command(
    name = "graft",
    version,
    about = "Fine-tune a pretrained MobileNetV2 or EfficientNet-Lite0 on folders of images"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Convert a torchvision checkpoint (.pth) to safetensors (f32, f16 or int8 per channel).
    Convert(ConvertArgs),
    /// Train on DATA_DIR, which holds one subfolder per class.
    Train(Box<TrainArgs>),
    /// Top-k classes of each image.
    Predict(PredictArgs),
    /// A project file saved by the page: show it, unpack its pictures, or pack a folder as one.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Write an exported model directory as one zip (like the web download) or as ONNX.
    Export(ExportArgs),
    /// Throughput of feature extraction and fine-tuning on synthetic input.
    Bench(BenchArgs),
    /// Decode every file under a folder and report which would be used, and why not.
    Check(CheckArgs),
    /// The lessons as one experiment: frozen, stacked, discriminative, one rate — same data.
    Compare(Box<CompareArgs>),
    /// The learning-rate range test: loss against an exponentially growing rate.
    LrFind(Box<LrFindArgs>),
    /// Data checks, and (with --model) what a trained model gets wrong and what it forgot.
    Report(ReportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendName {
    /// CPU (burn's flex backend).
    Flex,
    /// GPU through wgpu (Vulkan/Metal/DX12; Mesa lavapipe on a GPU-less Linux box).
    Wgpu,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HeadName {
    /// A fresh Linear(1280, N): the ImageNet head is thrown away.
    Replace,
    /// Experiment: keep the ImageNet head frozen and stack Linear(1000, N) on it.
    Stacked,
    /// Start from the ImageNet rows of classes named after ImageNet classes.
    Keep,
}

#[derive(Args, Clone)]
pub struct Common {
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: BackendName,
    /// Pretrained weights (safetensors); default $GRAFT_WEIGHTS, else
    /// static/weights/<backbone>.safetensors.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The pretrained network: mobilenet_v2 | efficientnet_lite0 (a project file's own choice
    /// unless given).
    #[arg(long, default_value_t = TrainConfig::default().backbone)]
    pub backbone: Architecture,
}

#[derive(Args)]
pub struct ConvertArgs {
    pub pth: PathBuf,
    pub out: PathBuf,
    /// How the numbers are stored: f32, f16 (half the bytes) or int8 (int8 weights with one
    /// scale per output channel, f16 for the rest: a quarter). Widened to f32 when loaded.
    #[arg(long, value_enum, default_value = "f32")]
    pub store: Store,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Store {
    F32,
    F16,
    Int8,
}

fn defaults() -> TrainConfig {
    TrainConfig::default()
}

/// The settings of a run, shared by `train`, `compare` and `lr-find`.
#[derive(Args, Clone)]
pub struct TrainOptions {
    /// A folder with one subfolder per class, or a project file saved by the page (its prepared
    /// pictures, classes and settings; the flags given override its settings).
    pub data_dir: PathBuf,
    #[arg(long, value_parser = parse_mode, default_value_t = defaults().mode.label().to_string())]
    pub mode: String,
    #[arg(long, default_value_t = defaults().epochs)]
    pub epochs: usize,
    /// Peak learning rate of the head (one-cycle schedule).
    #[arg(long, default_value_t = defaults().lr)]
    pub lr: f64,
    /// Backbone learning rate = lr × ratio (discriminative mode).
    #[arg(long, default_value_t = defaults().backbone_ratio)]
    pub ratio: f64,
    /// Head-only epochs before the backbone unfreezes (discriminative mode).
    #[arg(long, default_value_t = defaults().warmup_epochs)]
    pub warmup: usize,
    #[arg(long, default_value_t = defaults().batch_size)]
    pub batch: usize,
    /// Share of each class held out for validation.
    #[arg(long, default_value_t = defaults().val_fraction)]
    pub val: f32,
    #[arg(long, default_value_t = defaults().seed)]
    pub seed: u64,
    #[arg(long, default_value_t = defaults().input_size)]
    pub input_size: u32,
    /// Augmented views cached per image in frozen mode.
    #[arg(long, default_value_t = defaults().frozen_views)]
    pub views: usize,
    #[arg(long, default_value_t = defaults().label_smoothing)]
    pub smoothing: f32,
    #[arg(long, default_value_t = defaults().weight_decay)]
    pub weight_decay: f32,
    /// Train without random crops, flips and colour jitter.
    #[arg(long)]
    pub no_augment: bool,
    /// Early backbone layers learn up to 10× slower than late ones.
    #[arg(long)]
    pub layer_groups: bool,
    /// Print every event as a JSON line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
    /// The ids of the flags given on the command line (filled after parsing): these override a
    /// project's settings.
    #[arg(skip)]
    pub given: Vec<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: TrainOptions,
    /// Directory to export the trained model to.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "replace")]
    pub head: HeadName,
    /// Start from a checkpoint instead of ImageNet's weights: a graft export (directory or .zip)
    /// or project file — trained further when its classes are the data's, else its backbone with a
    /// new head — or a torchvision-named MobileNetV2 state_dict (.pth, .safetensors). Every check
    /// and decision is printed; a checkpoint that does not fit is refused with the reason.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// When stopped with Ctrl-C after a completed epoch, still export that epoch's model.
    #[arg(long)]
    pub keep_partial: bool,
    /// Training a project file: also write the project with the new model (and the settings of
    /// this run) here, for the page to open.
    #[arg(long, value_name = "OUT")]
    pub save_project: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Classes, picture counts, settings and the kept model of a project file.
    Info { project: PathBuf },
    /// Write a project's pictures (its prepared copies) as DIR/<class>/<picture>.jpg.
    Unpack { project: PathBuf, dir: PathBuf },
    /// Make a project file of a folder of class folders, preparing every picture as the page does.
    Pack { dir: PathBuf, out: PathBuf },
}

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub run: TrainOptions,
    /// Compare the backbones instead (MobileNetV2 and EfficientNet-Lite0, each from
    /// static/weights/, or from --weights for the backbone that file holds): the same data,
    /// split, seed, mode and settings on both.
    #[arg(long)]
    pub backbones: bool,
}

#[derive(Args)]
pub struct LrFindArgs {
    #[command(flatten)]
    pub run: TrainOptions,
    /// Steps of the sweep (the rate grows from 1e-6 to 1 over them).
    #[arg(long, default_value_t = 80)]
    pub steps: usize,
    /// Then train with the suggested rate and export the model here.
    #[arg(long)]
    pub apply_out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReportArgs {
    pub data_dir: PathBuf,
    /// An exported model trained on this folder: also report on its validation split.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

fn parse_mode(s: &str) -> Result<String, String> {
    s.parse::<Mode>().map(|m| m.label().to_string())
}

impl TrainOptions {
    /// Whether the flag with this id was given on the command line.
    pub fn given(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }

    /// `base` (a project's settings) with every flag given on the command line applied.
    pub fn config_over(&self, base: TrainConfig) -> Result<TrainConfig, String> {
        let flags = self.config()?;
        let mut cfg = base;
        macro_rules! given {
            ($($id:literal => $field:ident),* $(,)?) => {
                $(if self.given($id) { cfg.$field = flags.$field.clone(); })*
            };
        }
        given!(
            "mode" => mode, "epochs" => epochs, "lr" => lr, "ratio" => backbone_ratio,
            "warmup" => warmup_epochs, "batch" => batch_size, "val" => val_fraction, "seed" => seed,
            "input_size" => input_size, "views" => frozen_views, "smoothing" => label_smoothing,
            "weight_decay" => weight_decay, "no_augment" => augment, "layer_groups" => layer_groups,
            "backbone" => backbone,
        );
        Ok(cfg)
    }

    pub fn config(&self) -> Result<TrainConfig, String> {
        let d = TrainConfig::default();
        Ok(TrainConfig {
            mode: self.mode.parse()?,
            epochs: self.epochs,
            lr: self.lr,
            backbone_ratio: self.ratio,
            layer_groups: self.layer_groups,
            warmup_epochs: self.warmup,
            batch_size: self.batch,
            weight_decay: self.weight_decay,
            label_smoothing: self.smoothing,
            val_fraction: self.val,
            augment: if self.no_augment { None } else { d.augment },
            frozen_views: self.views,
            input_size: self.input_size,
            seed: self.seed,
            backbone: self.common.backbone,
        })
    }
}

#[derive(Args)]
pub struct PredictArgs {
    /// An exported model directory, then the images (or only images with --imagenet).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Classify with the pretrained ImageNet classifier instead of a trained model.
    #[arg(long)]
    pub imagenet: bool,
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Print one JSON object per image (file, top classes, every probability) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the preprocessed input tensors, `float32[N, 3, S, S]` in the order of the
    /// usable images, as a NumPy `.npy` file (to feed the same tensors to another runtime).
    #[arg(long, value_name = "FILE.npy")]
    pub save_inputs: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct ExportArgs {
    /// An exported model directory (`model.safetensors`, `labels.json`, `manifest.json`).
    pub model_dir: PathBuf,
    /// The file to write (a folder for `pytorch-recipe`).
    pub out: PathBuf,
    /// `zip`: the three files in one zip, like the web download; `onnx`: one ONNX model
    /// (opset 17, BatchNorm folded, normalised NCHW input, logits and probabilities out);
    /// `pytorch-recipe`: a folder that continues training under PyTorch DDP (`torchrun`).
    #[arg(long, value_enum, default_value = "zip")]
    pub format: ExportFormat,
    /// The pictures for `pytorch-recipe`: a project file saved by the page, or a folder of
    /// class folders (the model's classes).
    #[arg(long, value_name = "PROJECT_OR_FOLDER")]
    pub data: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Zip,
    Onnx,
    PytorchRecipe,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32")]
    pub batches: Vec<usize>,
    /// Timed batches per measurement (after one warm-up batch).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    #[arg(long, default_value_t = 224)]
    pub input_size: u32,
    /// Also print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// On a GPU backend: graft's kernels (the default), burn's generic ops, or both side by side.
    #[arg(long, value_enum, default_value = "graft")]
    pub gpu_path: GpuPath,
    /// On a GPU backend: time every kernel of one more batch and print the time by op group.
    #[arg(long)]
    pub profile: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GpuPath {
    /// graft's NHWC path with its own kernels.
    Graft,
    /// burn's generic ops (the baseline).
    Generic,
    /// Both, one after the other in the same run.
    Both,
}

#[derive(Args)]
pub struct CheckArgs {
    pub dir: PathBuf,
    /// List every refused file with its reason.
    #[arg(long)]
    pub verbose: bool,
    /// Print the tally as JSON.
    #[arg(long)]
    pub json: bool,
}
