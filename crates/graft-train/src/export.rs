//! Export: `model.safetensors` (torchvision names, head sized N) + `labels.json` +
//! `manifest.json`. The same files load back for prediction and further training.

use std::collections::HashMap;

use burn::tensor::Device;
use graft_data::{check_class_names, Normalization, Preprocess};
use graft_model::{Architecture, HeadKind, ImageClassifier, WeightError, WeightMap, WeightSource, IMAGENET_CLASSES};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::events::Summary;
use crate::trainer::TrainedModel;
use graft_data::{read_zip, write_zip, ZipError};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const LABELS_FILE: &str = "labels.json";
pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT: &str = "graft-model/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub architecture: String,
    pub head: HeadKind,
    pub classes: Vec<String>,
    pub input_size: u32,
    pub resize_side: u32,
    pub normalization: Normalization,
    pub weights_file: String,
    /// Training mode and hyperparameters (seed included); absent for an untrained model.
    pub training: Option<TrainConfig>,
    pub metrics: Option<Summary>,
    pub created_by: String,
}

impl Manifest {
    pub fn new(
        arch: Architecture,
        classes: Vec<String>,
        head: HeadKind,
        preprocess: &Preprocess,
        training: Option<TrainConfig>,
        metrics: Option<Summary>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            architecture: arch.name().into(),
            head,
            classes,
            input_size: preprocess.input_size,
            resize_side: preprocess.resize_side,
            normalization: preprocess.norm,
            weights_file: WEIGHTS_FILE.into(),
            training,
            metrics,
            created_by: format!("graft {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Checks what a manifest from outside (an export directory, a project file) claims before
    /// anything is built from it; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT || self.arch().is_err() {
            return Err(format!("unsupported format {} / {}", self.format, self.architecture));
        }
        check_class_names(&self.classes).map_err(|e| format!("classes: {e}"))?;
        if !(32..=1024).contains(&self.input_size) {
            return Err(format!("input_size {} is outside 32..=1024", self.input_size));
        }
        if !(self.input_size..=4096).contains(&self.resize_side) {
            return Err(format!("resize_side {} is outside {}..=4096", self.resize_side, self.input_size));
        }
        let n = self.normalization;
        if !n.mean.iter().all(|m| m.is_finite()) || !n.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(format!("normalization {n:?} needs finite means and positive standard deviations"));
        }
        if let HeadKind::KeepImagenet { rows } = &self.head {
            if rows.len() != self.classes.len() || rows.iter().any(|&r| r >= IMAGENET_CLASSES) {
                return Err(format!("head rows {rows:?} do not fit {} classes of ImageNet", self.classes.len()));
            }
        }
        if !self.metrics_are_finite() {
            return Err("its metrics are not finite numbers".into());
        }
        Ok(())
    }

    /// The backbone the weights are for.
    pub fn arch(&self) -> Result<Architecture, String> {
        self.architecture.parse()
    }

    pub fn preprocess(&self) -> Preprocess {
        Preprocess { input_size: self.input_size, resize_side: self.resize_side, norm: self.normalization }
    }

    /// Whether every recorded metric is a finite number.
    pub fn metrics_are_finite(&self) -> bool {
        let Some(m) = &self.metrics else { return true };
        let epochs = m.epochs.iter().all(|e| {
            [e.train_loss, e.train_accuracy, e.seconds].iter().all(|v| v.is_finite())
                && e.val_loss.is_none_or(f32::is_finite)
                && e.val_accuracy.is_none_or(f32::is_finite)
        });
        let eval = m.evaluation.as_ref().is_none_or(|e| e.loss.is_finite() && e.accuracy.is_finite());
        epochs && eval && m.seconds.is_finite() && m.images_per_sec.is_finite()
    }
}

/// The three exported files, in memory.
#[derive(Debug, Clone)]
pub struct ExportBundle {
    pub files: Vec<(String, Vec<u8>)>,
}

impl ExportBundle {
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }

    /// One `.zip` download for the browser.
    pub fn to_zip(&self) -> Result<Vec<u8>, ZipError> {
        write_zip(&self.files)
    }

    /// The files of an exported model's zip (as [`ExportBundle::to_zip`] writes it).
    pub fn from_zip(bytes: &[u8]) -> Result<Self, LoadError> {
        let files = read_zip(bytes).map_err(|e| LoadError::Manifest(e.to_string()))?;
        let bundle = Self { files };
        for name in [WEIGHTS_FILE, MANIFEST_FILE] {
            if bundle.file(name).is_none() {
                return Err(LoadError::Manifest(format!("the archive has no {name}")));
            }
        }
        Ok(bundle)
    }

    /// Loads the model these files describe onto `device`.
    pub fn load(&self, device: &Device) -> Result<TrainedModel, LoadError> {
        let missing = |name: &str| LoadError::Manifest(format!("the export has no {name}"));
        let weights = self.file(WEIGHTS_FILE).ok_or_else(|| missing(WEIGHTS_FILE))?;
        let manifest = self.file(MANIFEST_FILE).ok_or_else(|| missing(MANIFEST_FILE))?;
        let (model, manifest) = load_exported(weights.to_vec(), manifest, device)?;
        Ok(TrainedModel { model, manifest })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error("the manifest cannot be written: {0}")]
    Manifest(String),
}

/// Reads the model back from the device (asynchronously) and packs the export.
pub async fn export_model(trained: &TrainedModel) -> Result<ExportBundle, ExportError> {
    let TrainedModel { model, manifest } = trained;
    if !manifest.metrics_are_finite() {
        // JSON has no NaN: such a manifest would be written with nulls and never load again.
        return Err(ExportError::Manifest("its metrics are not finite numbers (the run diverged)".into()));
    }
    let weights = model.to_weight_map().await?;
    // "format": "pt" tells safetensors' PyTorch helpers these are torch-layout tensors.
    let metadata =
        HashMap::from([("format".to_string(), "pt".to_string()), ("graft_format".to_string(), FORMAT.to_string())]);
    let safetensors = weights.to_safetensors_bytes(Some(metadata))?;
    let json_error = |e: serde_json::Error| ExportError::Manifest(e.to_string());
    let labels = serde_json::to_vec_pretty(&manifest.classes).map_err(json_error)?;
    let manifest_json = serde_json::to_vec_pretty(manifest).map_err(json_error)?;
    Ok(ExportBundle {
        files: vec![
            (WEIGHTS_FILE.into(), safetensors),
            (LABELS_FILE.into(), labels),
            (MANIFEST_FILE.into(), manifest_json),
        ],
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("manifest.json is invalid: {0}")]
    Manifest(String),
    #[error(transparent)]
    Weights(#[from] WeightError),
}

/// Loads an exported model onto `device` (plain, for prediction; fork it to train further).
pub fn load_exported(
    safetensors: Vec<u8>,
    manifest_json: &[u8],
    device: &Device,
) -> Result<(ImageClassifier, Manifest), LoadError> {
    let manifest: Manifest = serde_json::from_slice(manifest_json).map_err(|e| LoadError::Manifest(e.to_string()))?;
    manifest.check().map_err(LoadError::Manifest)?;
    let weights = WeightMap::from_safetensors_bytes(safetensors)?;
    if manifest.arch().ok() != Some(weights.architecture()) {
        let found = weights.architecture().name();
        return Err(LoadError::Manifest(format!("it names {} but the weights are {found}'s", manifest.architecture)));
    }
    let model = ImageClassifier::from_export(&weights, &manifest.head, manifest.classes.len(), device)?;
    Ok((model, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::new(
            Architecture::MobileNetV2,
            vec!["cat".into(), "dog".into()],
            HeadKind::Replace,
            &TrainConfig::default().preprocess(),
            None,
            None,
        )
    }

    /// A way to break a manifest, and the word its error must contain.
    type Breakage = (fn(&mut Manifest), &'static str);

    #[test]
    fn a_manifest_from_outside_is_checked_field_by_field() {
        assert_eq!(manifest().check(), Ok(()));
        let broken: [Breakage; 7] = [
            (|m| m.architecture = "resnet50".into(), "unsupported format"),
            (|m| m.classes = vec!["cat".into(), "cat".into()], "classes:"),
            (|m| m.input_size = 100_000, "input_size 100000"),
            (|m| m.resize_side = 100, "resize_side 100"),
            (|m| m.normalization.std = [0.2, 0.0, 0.2], "normalization"),
            (|m| m.normalization.mean = [f32::NAN, 0.0, 0.0], "normalization"),
            (|m| m.head = HeadKind::KeepImagenet { rows: vec![1, 5000] }, "head rows"),
        ];
        for (breaks, named) in broken {
            let mut m = manifest();
            breaks(&mut m);
            let err = m.check().expect_err(named);
            assert!(err.contains(named), "{err} should name {named}");
        }
    }
}
