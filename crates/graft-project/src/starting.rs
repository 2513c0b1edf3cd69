//! A starting checkpoint the user gives (a file dropped on the page, a path given to the CLI):
//! read from whatever it is — a graft export, a project file with a model, a safetensors
//! `state_dict` — and turned into what the run starts from, with every decision said.

use std::collections::HashMap;

use burn::tensor::Device;
use graft_data::read_zip;
use graft_model::checkpoint::{CheckpointError, StartingCheckpoint};
use graft_model::{Architecture, HeadKind, HeadSpec, ImageClassifier, WeightMap};
use graft_train::{load_exported, Manifest, MANIFEST_FILE, WEIGHTS_FILE};

use crate::archive::read_project;

/// A checkpoint as read, before it is checked against a run.
#[derive(Debug, Clone)]
pub enum Checkpoint {
    /// A model graft trained (an export, or a project's kept model): weights and manifest.
    Graft { weights: Vec<u8>, manifest: Box<Manifest> },
    /// Tensors under torchvision's names (a `state_dict`).
    StateDict(WeightMap),
}

/// What a run starts from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A graft model of exactly the run's classes, in order: trained further, head and all.
    Continue { weights: Vec<u8>, manifest: Box<Manifest>, notes: Vec<String> },
    /// The checkpoint's backbone, with a new head (see [`StartingCheckpoint`]).
    Backbone(StartingCheckpoint),
}

impl Start {
    /// One sentence per decision, for the page's notice and the CLI's output.
    pub fn notes(&self) -> &[String] {
        match self {
            Start::Continue { notes, .. } => notes,
            Start::Backbone(start) => &start.notes,
        }
    }

    /// The model the run starts from: the graft model as it was, or the checkpoint's backbone
    /// with a new head of `spec`.
    pub fn into_model(self, spec: &HeadSpec, device: &Device) -> Result<ImageClassifier, String> {
        match self {
            Start::Continue { weights, manifest, .. } => {
                let json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
                load_exported(weights, &json, device).map(|(model, _)| model).map_err(|e| e.to_string())
            }
            Start::Backbone(start) => {
                ImageClassifier::from_pretrained(&start.weights, spec, device).map_err(|e| e.to_string())
            }
        }
    }
}

/// Reads a checkpoint from its bytes; `name` (the file's) only words the errors.
pub fn read_checkpoint(name: &str, bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_zipped(name, bytes);
    }
    if graft_model::pytorch::is_legacy_checkpoint(bytes) {
        return read_pytorch(name, bytes);
    }
    if is_safetensors(bytes) {
        let weights = WeightMap::from_safetensors_bytes(bytes.to_vec()).map_err(|e| format!("{name}: {e}"))?;
        return Ok(Checkpoint::StateDict(weights));
    }
    Err(format!(
        "{name} is not a checkpoint graft reads: a PyTorch state_dict (.pth or .safetensors), a graft export \
         (.zip) or project file"
    ))
}

/// A safetensors file: a little-endian u64 header length, then that much JSON.
fn is_safetensors(bytes: &[u8]) -> bool {
    let Some(head) = bytes.get(..8).and_then(|h| <[u8; 8]>::try_from(h).ok()) else { return false };
    usize::try_from(u64::from_le_bytes(head)).is_ok_and(|len| len.checked_add(8).is_some_and(|end| end <= bytes.len()))
        && bytes.get(8) == Some(&b'{')
}

/// A PyTorch `.pth` (`torch.save` of a state_dict, either container).
fn read_pytorch(name: &str, bytes: &[u8]) -> Result<Checkpoint, String> {
    let weights = WeightMap::from_pytorch_bytes(bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok(Checkpoint::StateDict(weights))
}

fn read_zipped(name: &str, bytes: &[u8]) -> Result<Checkpoint, String> {
    let files: HashMap<String, Vec<u8>> = read_zip(bytes).map_err(|e| format!("{name}: {e}"))?.into_iter().collect();
    if let (Some(weights), Some(manifest)) = (files.get(WEIGHTS_FILE), files.get(MANIFEST_FILE)) {
        let manifest: Manifest =
            serde_json::from_slice(manifest).map_err(|e| format!("{name}: {MANIFEST_FILE}: {e}"))?;
        manifest.check().map_err(|e| format!("{name}: {e}"))?;
        return Ok(Checkpoint::Graft { weights: weights.clone(), manifest: Box::new(manifest) });
    }
    if files.keys().any(|f| f.ends_with("data.pkl")) {
        let weights = WeightMap::from_pytorch_zip_entries(files).map_err(|e| format!("{name}: {e}"))?;
        return Ok(Checkpoint::StateDict(weights));
    }
    if files.contains_key("project.json") {
        let project = read_project(bytes).map_err(|e| format!("{name}: {e}"))?;
        let model = project.model.ok_or_else(|| format!("{name} is a project without a trained model"))?;
        return Ok(Checkpoint::Graft { weights: model.weights.to_vec(), manifest: Box::new(model.manifest) });
    }
    Err(format!("{name} is a zip file, but neither a graft export nor a project file"))
}

impl Checkpoint {
    /// The network the checkpoint is of, when it says (a graft model's manifest) or its tensor
    /// names show it.
    pub fn architecture(&self) -> Option<Architecture> {
        match self {
            Checkpoint::Graft { manifest, .. } => manifest.arch().ok(),
            Checkpoint::StateDict(map) => {
                Architecture::detect(map.names().map(graft_model::checkpoint::unwrapped_name))
            }
        }
    }

    /// What a run on `arch` of `classes` with a head of `kind` starts from.
    pub fn start(self, arch: Architecture, classes: &[String], kind: &HeadKind) -> Result<Start, CheckpointError> {
        let state_dict = match self {
            Checkpoint::Graft { weights, manifest } => {
                let unreadable =
                    |e: String| CheckpointError { summary: "the graft model cannot be read".into(), problems: vec![e] };
                match manifest.arch() {
                    Ok(found) if found == arch => {}
                    Ok(found) => {
                        return Err(CheckpointError {
                            summary: format!("a graft model on {}, not {}", found.title(), arch.title()),
                            problems: vec![format!(
                                "choose {} as the pretrained network to start from it",
                                found.title()
                            )],
                        })
                    }
                    Err(e) => return Err(unreadable(e)),
                }
                if manifest.classes == classes {
                    let notes = vec![format!(
                        "a graft model of these {} classes: trained further, its head included",
                        classes.len()
                    )];
                    return Ok(Start::Continue { weights, manifest, notes });
                }
                let map = WeightMap::from_safetensors_bytes(weights).map_err(|e| unreadable(e.to_string()))?;
                let mut start = StartingCheckpoint::check(&map, arch, classes.len(), kind)?;
                start.notes.insert(
                    0,
                    format!("a graft model of other classes ({}): its backbone", manifest.classes.join(", ")),
                );
                return Ok(Start::Backbone(start));
            }
            Checkpoint::StateDict(map) => map,
        };
        StartingCheckpoint::check(&state_dict, arch, classes.len(), kind).map(Start::Backbone)
    }
}
