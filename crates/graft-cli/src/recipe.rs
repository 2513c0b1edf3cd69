//! `graft export MODEL_DIR OUT_DIR --format pytorch-recipe --data PROJECT_OR_FOLDER`: a
//! self-contained folder that continues the model's training under PyTorch DDP (`torchrun`),
//! on more GPUs or machines than a tab has, and writes a graft export again.

use std::path::{Path, PathBuf};

use graft_data::{stratified_split, Dataset, ImageItem, Pixels};
use graft_train::{ExportBundle, Manifest, TrainConfig};
use serde::Serialize;

const TRAIN_PY: &str = include_str!("recipe/train.py");
/// The EfficientNet-Lite0 module train.py builds for that backbone (and graft's reference and
/// ecosystem checks use).
const LITE0_PY: &str = include_str!("recipe/efficientnet_lite0.py");
const README: &str = include_str!("recipe/README.md");
const REQUIREMENTS: &str = "torch>=2.1\ntorchvision>=0.16\npillow\n";
const FORMAT: &str = "graft-pytorch-recipe/1";

/// `recipe.json`: what train.py needs besides the pictures and the starting weights.
#[derive(Serialize)]
struct Recipe<'a> {
    format: &'static str,
    classes: &'a [String],
    input_size: u32,
    resize_side: u32,
    normalization: graft_data::Normalization,
    /// The settings the model was trained with (graft's defaults for an untrained one); train.py's
    /// flags override epochs, mode, lr and batch size.
    train: TrainConfig,
    /// graft's own split of the pictures (seeded, stratified): data/train and data/val.
    split: SplitInfo,
}

#[derive(Serialize)]
struct SplitInfo {
    train: usize,
    val: usize,
    val_fraction: f32,
    seed: u64,
}

/// What was written, for the CLI to report.
pub struct RecipeSummary {
    pub train: usize,
    pub val: usize,
    pub skipped: usize,
}

/// The pictures: a project file (its prepared copies) or a folder of class folders (whose
/// original files the recipe copies).
fn load_pictures(data: &Path, manifest: &Manifest) -> Result<Dataset, String> {
    let preprocess = manifest.preprocess();
    if data.is_dir() {
        return Dataset::from_folder(data, preprocess).map_err(|e| e.to_string());
    }
    let bytes = std::fs::read(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let project = graft_project::read_project(&bytes).map_err(|e| format!("{}: {e}", data.display()))?;
    project.dataset(preprocess).map_err(|e| e.to_string())
}

/// A file name for `item` inside its class folder (subfolders flattened, names kept unique).
fn picture_name(item: &ImageItem, index: usize, original: bool) -> String {
    let base = Path::new(&item.name).file_name().map_or_else(|| "picture".into(), |n| n.to_string_lossy().into_owned());
    let base = if original {
        base
    } else {
        // A project's pictures are its prepared JPEG copies, whatever the original was.
        format!("{}.jpg", Path::new(&base).file_stem().unwrap_or_default().to_string_lossy())
    };
    format!("{index:05}-{base}")
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn write_recipe(
    bundle: &ExportBundle,
    manifest: &Manifest,
    data: &Path,
    out: &Path,
) -> Result<RecipeSummary, String> {
    // train.py builds either backbone; an unknown name is refused here rather than in PyTorch.
    manifest.arch()?;
    let dataset = load_pictures(data, manifest)?;
    let from_folder = data.is_dir();
    if dataset.classes != manifest.classes {
        return Err(format!(
            "the pictures' classes {:?} are not the model's {:?} (same names, same order)",
            dataset.classes, manifest.classes
        ));
    }
    let cfg = manifest.training.clone().unwrap_or_default();
    let (train, val) = stratified_split(&dataset.labels(), dataset.classes.len(), cfg.val_fraction, cfg.seed);
    for (split, indices) in [("train", &train), ("val", &val)] {
        for &i in indices.iter() {
            let item = &dataset.items[i];
            let bytes = match &item.image {
                _ if from_folder => std::fs::read(data.join(&item.name)).map_err(|e| format!("{}: {e}", item.name))?,
                Pixels::Jpeg(jpeg) => jpeg.to_vec(),
                Pixels::Raw(_) => return Err(format!("{}: a project picture without its prepared copy", item.name)),
            };
            let class = &dataset.classes[item.label];
            write(&out.join("data").join(split).join(class).join(picture_name(item, i, from_folder)), &bytes)?;
        }
    }
    for (name, bytes) in &bundle.files {
        write(&out.join("start").join(name), bytes)?;
    }
    let recipe = Recipe {
        format: FORMAT,
        classes: &manifest.classes,
        input_size: manifest.input_size,
        resize_side: manifest.resize_side,
        normalization: manifest.normalization,
        split: SplitInfo { train: train.len(), val: val.len(), val_fraction: cfg.val_fraction, seed: cfg.seed },
        train: cfg,
    };
    let json = serde_json::to_vec_pretty(&recipe).map_err(|e| e.to_string())?;
    write(&out.join("recipe.json"), &json)?;
    write(&out.join("train.py"), TRAIN_PY.as_bytes())?;
    write(&out.join("efficientnet_lite0.py"), LITE0_PY.as_bytes())?;
    write(&out.join("requirements.txt"), REQUIREMENTS.as_bytes())?;
    write(&out.join("README.md"), README.as_bytes())?;
    Ok(RecipeSummary { train: train.len(), val: val.len(), skipped: dataset.errors.len() })
}

/// `--data` is required for a recipe: the pictures travel with it.
pub fn data_path(data: Option<&PathBuf>) -> Result<&Path, String> {
    data.map(PathBuf::as_path)
        .ok_or_else(|| "a pytorch-recipe needs the pictures: --data PROJECT_FILE_OR_FOLDER".to_string())
}
