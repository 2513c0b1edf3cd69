//! A project: the classes (names, order), their prepared pictures, the training settings and the
//! last kept model. The browser keeps one in storage as it changes; a project file carries one to
//! another machine.

use std::sync::Arc;

use graft_data::{check_class_names, Dataset, DatasetError, ImageItem, Pixels, Preprocess};
use graft_model::{imagenet_rows_for, HeadKind};
use graft_train::{Manifest, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::ingest::Prepared;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassEntry {
    pub id: u32,
    pub name: String,
}

/// Which head a run gives the model (see `graft_model::HeadKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadChoice {
    #[default]
    Replace,
    Stacked,
    KeepImagenet,
}

/// The settings form, as the user left it.
impl HeadChoice {
    /// The head for these classes (keeping ImageNet's rows needs every class to be one).
    pub fn kind(self, classes: &[String]) -> Result<HeadKind, String> {
        Ok(match self {
            HeadChoice::Replace => HeadKind::Replace,
            HeadChoice::Stacked => HeadKind::Stacked,
            HeadChoice::KeepImagenet => HeadKind::KeepImagenet {
                rows: imagenet_rows_for(classes)
                    .ok_or("\"keep the ImageNet head\" needs every class named after an ImageNet class")?,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Settings {
    pub train: TrainConfig,
    pub head: HeadChoice,
}

/// One kept picture: its prepared copy (what training reads) and its thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: u64,
    pub class_id: u32,
    pub name: String,
    pub jpeg: Arc<[u8]>,
    pub thumb: Arc<[u8]>,
}

/// The description of a picture without its bytes (what project metadata lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: u64,
    pub class_id: u32,
    pub name: String,
}

impl ImageRecord {
    pub fn info(&self) -> ImageInfo {
        ImageInfo { id: self.id, class_id: self.class_id, name: self.name.clone() }
    }
}

/// How complete the kept model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ModelStatus {
    /// The run finished.
    Complete,
    /// The run was stopped after `completed_epochs` of `epochs`.
    Stopped { completed_epochs: usize, epochs: usize },
    /// Saved at the end of an epoch while training; the run did not end (reload, crash).
    Interrupted { completed_epochs: usize, epochs: usize },
}

impl ModelStatus {
    pub fn describe(self) -> String {
        match self {
            ModelStatus::Complete => "trained".into(),
            ModelStatus::Stopped { completed_epochs, epochs } => {
                format!("stopped after {completed_epochs} of {epochs} epochs")
            }
            ModelStatus::Interrupted { completed_epochs, epochs } => {
                format!("interrupted after {completed_epochs} of {epochs} epochs — continue training to finish")
            }
        }
    }
}

/// The last kept model: exported weights (safetensors) and manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    pub manifest: Manifest,
    pub weights: Arc<[u8]>,
    pub status: ModelStatus,
}

/// Everything of a project but the picture and weight bytes: what is saved as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectMeta {
    pub format: String,
    pub classes: Vec<ClassEntry>,
    pub settings: Settings,
    pub next_class_id: u32,
    pub next_image_id: u64,
}

pub const PROJECT_FORMAT: &str = "graft-project/1";

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub classes: Vec<ClassEntry>,
    pub images: Vec<ImageRecord>,
    pub settings: Settings,
    pub model: Option<ModelRecord>,
    pub next_class_id: u32,
    pub next_image_id: u64,
}

impl Default for Project {
    /// A new project: two empty classes.
    fn default() -> Self {
        let classes = vec![ClassEntry { id: 0, name: "class 1".into() }, ClassEntry { id: 1, name: "class 2".into() }];
        Self {
            classes,
            images: Vec::new(),
            settings: Settings::default(),
            model: None,
            next_class_id: 2,
            next_image_id: 0,
        }
    }
}

impl Project {
    /// A project from its saved parts (a project file, the browser's storage). The next ids are
    /// raised above every id in use, so they stay unique even when the last save of the metadata
    /// failed (a full disk) and pictures were saved after it.
    pub fn from_parts(meta: ProjectMeta, images: Vec<ImageRecord>, model: Option<ModelRecord>) -> Self {
        let ProjectMeta { classes, settings, next_class_id, next_image_id, .. } = meta;
        let next_image_id = next_image_id.max(images.iter().map(|i| i.id + 1).max().unwrap_or(0));
        let next_class_id = next_class_id.max(classes.iter().map(|c| c.id + 1).max().unwrap_or(0));
        Self { classes, images, settings, model, next_class_id, next_image_id }
    }

    pub fn meta(&self) -> ProjectMeta {
        ProjectMeta {
            format: PROJECT_FORMAT.into(),
            classes: self.classes.clone(),
            settings: self.settings.clone(),
            next_class_id: self.next_class_id,
            next_image_id: self.next_image_id,
        }
    }

    /// Adds a class at the end; returns its id.
    pub fn add_class(&mut self, name: &str) -> u32 {
        let id = self.next_class_id;
        self.next_class_id += 1;
        self.classes.push(ClassEntry { id, name: name.to_string() });
        id
    }

    pub fn rename_class(&mut self, id: u32, name: &str) -> bool {
        match self.classes.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                c.name = name.to_string();
                true
            }
            None => false,
        }
    }

    /// Removes a class and its pictures; returns the ids of the pictures removed.
    pub fn remove_class(&mut self, id: u32) -> Vec<u64> {
        self.classes.retain(|c| c.id != id);
        let removed = self.images.iter().filter(|i| i.class_id == id).map(|i| i.id).collect();
        self.images.retain(|i| i.class_id != id);
        removed
    }

    pub fn has_class(&self, id: u32) -> bool {
        self.classes.iter().any(|c| c.id == id)
    }

    /// Keeps a prepared picture in class `class_id`.
    pub fn add_image(&mut self, class_id: u32, name: String, prepared: Prepared) -> &ImageRecord {
        let id = self.next_image_id;
        self.next_image_id += 1;
        self.images.push(ImageRecord { id, class_id, name, jpeg: prepared.jpeg.into(), thumb: prepared.thumb.into() });
        &self.images[self.images.len() - 1]
    }

    pub fn remove_image(&mut self, id: u64) -> bool {
        let before = self.images.len();
        self.images.retain(|i| i.id != id);
        self.images.len() != before
    }

    pub fn count(&self, class_id: u32) -> usize {
        self.images.iter().filter(|i| i.class_id == class_id).count()
    }

    /// The class names in card order: the order of a model's logits.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// Bytes held by prepared copies and thumbnails.
    pub fn image_bytes(&self) -> usize {
        self.images.iter().map(|i| i.jpeg.len() + i.thumb.len()).sum()
    }

    /// The training set: class order = card order, names checked (named, distinct), pictures
    /// shared with the project (nothing is copied; each is decoded when a batch needs it).
    pub fn dataset(&self, preprocess: Preprocess) -> Result<Dataset, DatasetError> {
        let mut dataset = Dataset::new(check_class_names(&self.class_names())?, preprocess);
        for (label, class) in self.classes.iter().enumerate() {
            for image in self.images.iter().filter(|i| i.class_id == class.id) {
                let pixels = Pixels::Jpeg(image.jpeg.clone());
                dataset.items.push(ImageItem { name: image.name.clone(), label, image: pixels });
            }
        }
        Ok(dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(tag: u8) -> Prepared {
        Prepared { jpeg: vec![tag; 10], thumb: vec![tag; 3] }
    }

    #[test]
    fn classes_and_pictures_keep_ids_and_order() {
        let mut p = Project::default();
        assert_eq!(p.classes.len(), 2);
        let cat = p.add_class("cat");
        assert_eq!(cat, 2);
        assert!(p.rename_class(0, "dog"));
        let a = p.add_image(0, "a.jpg".into(), prepared(1)).id;
        let b = p.add_image(cat, "b.jpg".into(), prepared(2)).id;
        p.add_image(cat, "c.jpg".into(), prepared(3));
        assert_eq!((a, b), (0, 1));
        assert_eq!(p.count(cat), 2);
        assert_eq!(p.remove_class(cat), vec![1, 2]);
        assert_eq!(p.images.len(), 1);
        assert!(p.remove_image(a));
        assert!(!p.remove_image(a));
        // Ids are never reused.
        assert_eq!(p.add_class("bird"), 3);
        assert_eq!(p.add_image(0, "d.jpg".into(), prepared(4)).id, 3);
    }

    #[test]
    fn restored_parts_never_reuse_an_id() {
        // The metadata was last saved before picture 7 and class 4 were (a full disk).
        let mut saved = Project::default();
        saved.add_class("cat");
        let mut meta = saved.meta();
        meta.classes.push(ClassEntry { id: 4, name: "bird".into() });
        let image =
            ImageRecord { id: 7, class_id: 4, name: "b.jpg".into(), jpeg: vec![1].into(), thumb: vec![1].into() };
        let mut p = Project::from_parts(meta, vec![image], None);
        assert_eq!(p.add_class("fish"), 5);
        assert_eq!(p.add_image(0, "c.jpg".into(), prepared(1)).id, 8);
    }

    #[test]
    fn dataset_follows_card_order_and_checks_names() {
        let mut p = Project::default();
        p.rename_class(0, "dog");
        p.rename_class(1, "cat ");
        p.add_image(1, "x.jpg".into(), prepared(1));
        p.add_image(0, "y.jpg".into(), prepared(2));
        let d = p.dataset(Preprocess::imagenet(224)).expect("valid names");
        assert_eq!(d.classes, vec!["dog".to_string(), "cat".to_string()]);
        assert_eq!(d.labels(), vec![0, 1]);
        p.rename_class(1, "Dog");
        assert!(p.dataset(Preprocess::imagenet(224)).is_err());
    }
}
