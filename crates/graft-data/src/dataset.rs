//! Labelled image collections: from a folder of class subfolders or from in-memory bytes
//! (what the browser passes). Unusable files become per-file errors; the rest is kept.

use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::decode::decode_image;
use crate::preprocess::Preprocess;

/// One usable image, already resized to the preprocessing's `resize_side`.
#[derive(Debug, Clone)]
pub struct ImageItem {
    pub name: String,
    pub label: usize,
    pub image: RgbImage,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    pub file: String,
    pub reason: String,
}

/// Raw bytes of one file with its class index.
#[derive(Debug, Clone)]
pub struct LabelledBytes {
    pub label: usize,
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read the data folder: {0}")]
    Io(String),
    #[error("need at least 2 classes to train, found {0}")]
    TooFewClasses(usize),
    #[error("class `{0}` has no usable images")]
    EmptyClass(String),
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub classes: Vec<String>,
    pub items: Vec<ImageItem>,
    pub errors: Vec<FileError>,
}

impl Dataset {
    pub fn new(classes: Vec<String>) -> Self {
        Self { classes, ..Self::default() }
    }

    /// Decodes one file and keeps it, or records why it cannot be used.
    pub fn add(&mut self, file: LabelledBytes, preprocess: &Preprocess) -> Result<(), FileError> {
        match decode_image(&file.bytes) {
            Ok(image) => {
                self.items.push(ImageItem { name: file.name, label: file.label, image: preprocess.prepare(&image) });
                Ok(())
            }
            Err(e) => {
                let err = FileError { file: file.name, reason: e.to_string() };
                self.errors.push(err.clone());
                Err(err)
            }
        }
    }

    /// Builds a dataset from in-memory files.
    pub fn from_labelled_bytes(classes: Vec<String>, files: Vec<LabelledBytes>, preprocess: &Preprocess) -> Self {
        let mut dataset = Self::new(classes);
        for file in files {
            let _ = dataset.add(file, preprocess);
        }
        dataset
    }

    /// Reads `dir/<class>/**/<file>`; classes are the subfolder names in sorted order. Hidden
    /// files are skipped; every other unreadable file is reported.
    pub fn from_folder(dir: &Path, preprocess: &Preprocess) -> Result<Self, DatasetError> {
        let io = |e: std::io::Error| DatasetError::Io(format!("{}: {e}", dir.display()));
        let mut class_dirs: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir() && !is_hidden(&e.path()))
            .map(|e| e.path())
            .collect();
        class_dirs.sort();
        let classes =
            class_dirs.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        let mut dataset = Self::new(classes);
        for (label, class_dir) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_files(class_dir, &mut files).map_err(io)?;
            files.sort();
            for path in files {
                let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let _ = dataset.add(LabelledBytes { label, name, bytes }, preprocess);
                    }
                    Err(e) => dataset.errors.push(FileError { file: name, reason: format!("cannot read file: {e}") }),
                }
            }
        }
        Ok(dataset)
    }

    /// Usable images per class.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for item in &self.items {
            counts[item.label] += 1;
        }
        counts
    }

    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.label).collect()
    }

    /// Checked before training: at least two classes, none of them empty.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if self.classes.len() < 2 {
            return Err(DatasetError::TooFewClasses(self.classes.len()));
        }
        let counts = self.counts();
        match self.classes.iter().zip(&counts).find(|(_, &n)| n == 0) {
            Some((name, _)) => Err(DatasetError::EmptyClass(name.clone())),
            None => Ok(()),
        }
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().map(|n| n.to_string_lossy().starts_with('.')).unwrap_or(false)
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
