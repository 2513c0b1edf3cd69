//! Images in, normalised tensors out: decoding (with every failure named), preprocessing and
//! augmentation, labelled datasets from folders or in-memory bytes, stratified splits.
//! No burn here: this crate produces plain `Vec<f32>` in CHW layout.

mod dataset;
mod decode;
mod preprocess;
mod rng;
mod split;

pub use dataset::{Dataset, DatasetError, FileError, ImageItem, LabelledBytes};
pub use decode::{decode_image, DecodeError, MAX_PIXELS, MAX_SIDE};
pub use preprocess::{Augment, Normalization, Preprocess};
pub use rng::SeededRng;
pub use split::stratified_split;
