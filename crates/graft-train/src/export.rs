//! Export: `model.safetensors` (torchvision names, head sized N) + `labels.json` +
//! `manifest.json`. The same files load back for prediction and further training.

use std::collections::HashMap;

use burn::tensor::Device;
use graft_data::{Normalization, Preprocess};
use graft_model::{HeadKind, ImageClassifier, WeightError, WeightMap};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::events::Summary;
use crate::zip::stored_zip;

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
        classes: Vec<String>,
        head: HeadKind,
        preprocess: &Preprocess,
        training: Option<TrainConfig>,
        metrics: Option<Summary>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            architecture: "mobilenet_v2".into(),
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

    pub fn preprocess(&self) -> Preprocess {
        Preprocess { input_size: self.input_size, resize_side: self.resize_side, norm: self.normalization }
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
    pub fn to_zip(&self) -> Vec<u8> {
        stored_zip(&self.files)
    }
}

/// Reads the model back from the device (asynchronously) and packs the export.
pub async fn export_model(model: &ImageClassifier, manifest: &Manifest) -> Result<ExportBundle, WeightError> {
    let weights = model.to_weight_map().await?;
    // "format": "pt" tells safetensors' PyTorch helpers these are torch-layout tensors.
    let metadata =
        HashMap::from([("format".to_string(), "pt".to_string()), ("graft_format".to_string(), FORMAT.to_string())]);
    let safetensors = weights.to_safetensors_bytes(Some(metadata))?;
    let labels = serde_json::to_vec_pretty(&manifest.classes).expect("labels serialise");
    let manifest_json = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
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
    if manifest.format != FORMAT || manifest.architecture != "mobilenet_v2" {
        return Err(LoadError::Manifest(format!("unsupported format {} / {}", manifest.format, manifest.architecture)));
    }
    let weights = WeightMap::from_safetensors_bytes(safetensors)?;
    let model = ImageClassifier::from_export(&weights, &manifest.head, manifest.classes.len(), device)?;
    Ok((model, manifest))
}
