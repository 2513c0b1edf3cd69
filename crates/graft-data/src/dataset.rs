//! Labelled image collections: from a folder of class subfolders or from in-memory bytes
//! (what the browser passes). Unusable files become per-file errors; the rest is kept.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::decode::{check_dimensions, decode_image_for_side, DecodeError};
use crate::preprocess::Preprocess;

/// The pixels of a prepared picture: decoded, or kept as a compact JPEG (the browser's form:
/// 2,000 pictures take tens of megabytes) and decoded when a batch needs them. Shared either way:
/// a training run clones items without copying pictures.
#[derive(Debug, Clone)]
pub enum Pixels {
    Raw(Arc<RgbImage>),
    Jpeg(Arc<[u8]>),
}

impl Pixels {
    pub fn rgb(&self) -> Result<Cow<'_, RgbImage>, DecodeError> {
        match self {
            Pixels::Raw(image) => Ok(Cow::Borrowed(image.as_ref())),
            Pixels::Jpeg(bytes) => {
                image::ImageReader::with_format(Cursor::new(bytes.as_ref()), image::ImageFormat::Jpeg)
                    .decode()
                    .map(|img| Cow::Owned(img.to_rgb8()))
                    .map_err(|e| DecodeError::Corrupt(format!("prepared copy: {e}")))
            }
        }
    }
}

/// JPEG quality of prepared copies: differences from the original are a level or two per channel.
pub const PREPARED_JPEG_QUALITY: u8 = 92;

/// Encodes pixels as a baseline JPEG of `quality`.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .map_err(|e| DecodeError::Corrupt(format!("cannot encode the prepared copy: {e}")))?;
    Ok(out)
}

/// One usable image, already resized to the preprocessing's `resize_side`.
#[derive(Debug, Clone)]
pub struct ImageItem {
    pub name: String,
    pub label: usize,
    pub image: Pixels,
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
    #[error("class {index} has no name")]
    UnnamedClass { index: usize },
    #[error("two classes are both called `{0}` (names are compared ignoring case and outer spaces)")]
    DuplicateClass(String),
    #[error("an image is labelled {label} but there are only {classes} classes")]
    BadLabel { label: usize, classes: usize },
}

/// Class names as they will be used: trimmed; refused when empty or duplicated (ignoring case).
pub fn check_class_names(names: &[String]) -> Result<Vec<String>, DatasetError> {
    let trimmed: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    for (index, name) in trimmed.iter().enumerate() {
        if name.is_empty() {
            return Err(DatasetError::UnnamedClass { index: index + 1 });
        }
        if trimmed[..index].iter().any(|other| other.to_lowercase() == name.to_lowercase()) {
            return Err(DatasetError::DuplicateClass(name.clone()));
        }
    }
    Ok(trimmed)
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub classes: Vec<String>,
    pub items: Vec<ImageItem>,
    pub errors: Vec<FileError>,
    /// How the kept images were prepared (their stored `resize_side`).
    pub preprocess: Preprocess,
}

impl Dataset {
    pub fn new(classes: Vec<String>, preprocess: Preprocess) -> Self {
        Self { classes, items: Vec::new(), errors: Vec::new(), preprocess }
    }

    /// Decodes one file and keeps it, or records why it cannot be used.
    pub fn add(&mut self, file: LabelledBytes) -> Result<(), FileError> {
        match decode_image_for_side(&file.bytes, &file.name, self.preprocess.resize_side) {
            Ok(image) => {
                self.push_decoded(file.name, file.label, &image);
                Ok(())
            }
            Err(e) => {
                let err = FileError { file: file.name, reason: e.to_string() };
                self.errors.push(err.clone());
                Err(err)
            }
        }
    }

    /// Keeps a picture decoded elsewhere (e.g. by the browser), after the same size checks.
    pub fn add_decoded(&mut self, name: String, label: usize, image: &RgbImage) -> Result<(), FileError> {
        if let Err(e) = check_dimensions(image.width(), image.height()) {
            let err = FileError { file: name, reason: e.to_string() };
            self.errors.push(err.clone());
            return Err(err);
        }
        self.push_decoded(name, label, image);
        Ok(())
    }

    /// Keeps the *prepared copy* the page keeps: resized to `resize_side` and stored as a JPEG
    /// (tens of kilobytes instead of a quarter megabyte decoded), so a folder of 10,000 pictures
    /// fits in memory and the CLI trains on exactly what the page would.
    fn push_decoded(&mut self, name: String, label: usize, image: &RgbImage) {
        let prepared = self.preprocess.prepare(image);
        let image = match encode_jpeg(&prepared, PREPARED_JPEG_QUALITY) {
            Ok(jpeg) => Pixels::Jpeg(jpeg.into()),
            Err(_) => Pixels::Raw(Arc::new(prepared)),
        };
        self.items.push(ImageItem { name, label, image });
    }

    /// Builds a dataset from in-memory files.
    pub fn from_labelled_bytes(classes: Vec<String>, files: Vec<LabelledBytes>, preprocess: Preprocess) -> Self {
        let mut dataset = Self::new(classes, preprocess);
        for file in files {
            let _ = dataset.add(file);
        }
        dataset
    }

    /// Reads `dir/<class>/**/<file>`; classes are the subfolder names in sorted order. Hidden
    /// files are skipped; every other unreadable file is reported.
    pub fn from_folder(dir: &Path, preprocess: Preprocess) -> Result<Self, DatasetError> {
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
        let mut dataset = Self::new(classes, preprocess);
        for (label, class_dir) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_files(class_dir, &mut files).map_err(io)?;
            files.sort();
            for path in files {
                let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let _ = dataset.add(LabelledBytes { label, name, bytes });
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
            if let Some(c) = counts.get_mut(item.label) {
                *c += 1;
            }
        }
        counts
    }

    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.label).collect()
    }

    /// Checked before training: at least two named, distinct classes, none of them empty.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if self.classes.len() < 2 {
            return Err(DatasetError::TooFewClasses(self.classes.len()));
        }
        check_class_names(&self.classes)?;
        if let Some(item) = self.items.iter().find(|i| i.label >= self.classes.len()) {
            return Err(DatasetError::BadLabel { label: item.label, classes: self.classes.len() });
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
