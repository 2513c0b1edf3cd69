//! The project file ("Save project" / "Open project"): one zip holding `project.json` (classes,
//! settings, the list of pictures), every prepared picture and thumbnail, and the kept model
//! (`model/model.safetensors`, `model/manifest.json`, `model/status.json`).

use std::collections::HashMap;

use graft_data::{read_zip, write_zip};
use graft_train::Manifest;
use serde::{Deserialize, Serialize};

use crate::project::{ImageInfo, ImageRecord, ModelRecord, ModelStatus, Project, ProjectMeta, PROJECT_FORMAT};

const PROJECT_JSON: &str = "project.json";
const MODEL_WEIGHTS: &str = "model/model.safetensors";
const MODEL_MANIFEST: &str = "model/manifest.json";
const MODEL_STATUS: &str = "model/status.json";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a graft project file: {0}")]
    Invalid(String),
    #[error("the project file is damaged: {0}")]
    Damaged(String),
}

/// `project.json`: the metadata plus the list of pictures.
#[derive(Serialize, Deserialize)]
struct ProjectJson {
    #[serde(flatten)]
    meta: ProjectMeta,
    images: Vec<ImageInfo>,
}

fn image_path(id: u64) -> String {
    format!("images/{id}.jpg")
}

fn thumb_path(id: u64) -> String {
    format!("thumbs/{id}.jpg")
}

/// Packs a whole project into one file.
pub fn write_project(project: &Project) -> Result<Vec<u8>, ArchiveError> {
    let json = ProjectJson { meta: project.meta(), images: project.images.iter().map(ImageRecord::info).collect() };
    let mut files = vec![(PROJECT_JSON.to_string(), to_json(&json)?)];
    for image in &project.images {
        files.push((image_path(image.id), image.jpeg.to_vec()));
        files.push((thumb_path(image.id), image.thumb.to_vec()));
    }
    if let Some(model) = &project.model {
        files.push((MODEL_WEIGHTS.into(), model.weights.to_vec()));
        files.push((MODEL_MANIFEST.into(), to_json(&model.manifest)?));
        files.push((MODEL_STATUS.into(), to_json(&model.status)?));
    }
    write_zip(&files).map_err(|e| ArchiveError::Invalid(e.to_string()))
}

/// Reads a project file back, checking that everything it lists is there.
pub fn read_project(bytes: &[u8]) -> Result<Project, ArchiveError> {
    let files: HashMap<String, Vec<u8>> =
        read_zip(bytes).map_err(|e| ArchiveError::Invalid(e.to_string()))?.into_iter().collect();
    let json = files.get(PROJECT_JSON).ok_or_else(|| ArchiveError::Invalid(format!("it has no {PROJECT_JSON}")))?;
    let json: ProjectJson =
        serde_json::from_slice(json).map_err(|e| ArchiveError::Damaged(format!("{PROJECT_JSON}: {e}")))?;
    if json.meta.format != PROJECT_FORMAT {
        return Err(ArchiveError::Invalid(format!("format `{}`, expected `{PROJECT_FORMAT}`", json.meta.format)));
    }
    let file = |name: &str| files.get(name).ok_or_else(|| ArchiveError::Damaged(format!("{name} is missing")));
    // Ids identify classes and pictures everywhere (storage keys, findings, the model's order):
    // a file that repeats one is refused, not half-loaded.
    let mut class_ids: Vec<u32> = json.meta.classes.iter().map(|c| c.id).collect();
    class_ids.sort_unstable();
    if let Some(w) = class_ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ArchiveError::Damaged(format!("class id {} is used twice", w[0])));
    }
    let mut image_ids: Vec<u64> = json.images.iter().map(|i| i.id).collect();
    image_ids.sort_unstable();
    if let Some(w) = image_ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ArchiveError::Damaged(format!("picture id {} is used twice", w[0])));
    }
    let mut images = Vec::with_capacity(json.images.len());
    for info in json.images {
        if !json.meta.classes.iter().any(|c| c.id == info.class_id) {
            return Err(ArchiveError::Damaged(format!("picture {} belongs to no class", info.name)));
        }
        images.push(ImageRecord {
            jpeg: file(&image_path(info.id))?.as_slice().into(),
            thumb: file(&thumb_path(info.id))?.as_slice().into(),
            id: info.id,
            class_id: info.class_id,
            name: info.name,
        });
    }
    let model = match files.get(MODEL_WEIGHTS) {
        None => None,
        Some(weights) => {
            let manifest: Manifest = serde_json::from_slice(file(MODEL_MANIFEST)?)
                .map_err(|e| ArchiveError::Damaged(format!("{MODEL_MANIFEST}: {e}")))?;
            manifest.check().map_err(|e| ArchiveError::Damaged(format!("{MODEL_MANIFEST}: {e}")))?;
            let status: ModelStatus = serde_json::from_slice(file(MODEL_STATUS)?)
                .map_err(|e| ArchiveError::Damaged(format!("{MODEL_STATUS}: {e}")))?;
            Some(ModelRecord { manifest, weights: weights.as_slice().into(), status })
        }
    };
    Ok(Project::from_parts(json.meta, images, model))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec_pretty(value).map_err(|e| ArchiveError::Invalid(e.to_string()))
}

/// The project's pictures (its prepared JPEG copies) as `<class>/<id>-<name>.jpg`, classes in
/// card order: what the page's "Download pictures" zips and `graft project unpack` writes.
pub fn pictures_as_class_folders(project: &Project) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let names: Vec<String> = project.classes.iter().map(|c| c.name.clone()).collect();
    let names = graft_data::check_class_names(&names).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let mut files = Vec::new();
    for (class, name) in project.classes.iter().zip(&names) {
        let folder = name.replace(['/', '\\'], "_");
        for image in project.images.iter().filter(|i| i.class_id == class.id) {
            let stem =
                std::path::Path::new(&image.name).file_stem().map_or_else(|| "picture".into(), |s| s.to_string_lossy());
            files.push((format!("{folder}/{}-{stem}.jpg", image.id), image.jpeg.to_vec()));
        }
    }
    Ok(files)
}

/// "Download pictures": [`pictures_as_class_folders`] in one zip.
pub fn pictures_zip(project: &Project) -> Result<Vec<u8>, ArchiveError> {
    write_zip(&pictures_as_class_folders(project)?).map_err(|e| ArchiveError::Invalid(e.to_string()))
}
