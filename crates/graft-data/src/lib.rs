//! Images in, normalised tensors out: decoding (with every failure named), preprocessing and
//! augmentation, labelled datasets from folders or in-memory bytes, stratified splits, and the
//! ZIP archives that carry models and projects (untrusted input too).
//! No burn here: this crate produces plain `Vec<f32>` in CHW layout.

mod dataset;
mod decode;
mod jpeg_end;
mod jpeg_scaled;
mod num;
mod preprocess;
mod rng;
mod split;
mod zip_files;

pub use dataset::{
    check_class_names, encode_jpeg, Dataset, DatasetError, FileError, ImageItem, LabelledBytes, Pixels,
    PREPARED_JPEG_QUALITY,
};
pub use decode::{
    check_dimensions, decode_image, decode_image_for_side, decode_image_named, rgba_to_rgb, DecodeError, MAX_ASPECT,
    MAX_PIXELS, MAX_SIDE, MIN_SIDE,
};
pub use jpeg_end::{jpeg_end, JpegEnd};
pub use num::{round_u32, round_usize};
pub use preprocess::{Augment, Normalization, Preprocess, MAX_PREPARED_ASPECT};
pub use rng::SeededRng;
pub use split::stratified_split;
pub use zip_files::{read_zip, write_zip, ZipError, MAX_UNPACKED_BYTES};
