//! A dropped file or a webcam frame becomes a *prepared copy* — decoded, oriented, flattened,
//! resized to the training side and stored as a high-quality JPEG — plus a small thumbnail.
//! The prepared copy is what training reads, what the browser stores and what a project file
//! holds, so a reloaded project trains exactly like the one before the reload, and 2,000
//! pictures take tens of megabytes instead of gigabytes.

pub use graft_data::PREPARED_JPEG_QUALITY;
use graft_data::{check_dimensions, decode_image_for_side, encode_jpeg, rgba_to_rgb, DecodeError, Preprocess};
use image::imageops;
use image::RgbImage;

/// Thumbnails are this many pixels high (and at most twice as wide).
pub const THUMB_HEIGHT: u32 = 64;
const THUMB_JPEG_QUALITY: u8 = 80;

/// One picture ready to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The prepared copy: shorter side = the preprocessing's `resize_side`, JPEG.
    pub jpeg: Vec<u8>,
    /// A small JPEG for the page.
    pub thumb: Vec<u8>,
}

fn thumbnail(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let height = THUMB_HEIGHT.min(h);
    let width = graft_data::round_u32(f64::from(w) * f64::from(height) / f64::from(h)).clamp(1, 2 * height);
    imageops::thumbnail(image, width, height)
}

/// Prepares an already decoded picture (after the size checks every picture passes).
pub fn prepare_rgb(image: &RgbImage, preprocess: &Preprocess) -> Result<Prepared, DecodeError> {
    check_dimensions(image.width(), image.height())?;
    let prepared = preprocess.prepare(image);
    Ok(Prepared {
        jpeg: encode_jpeg(&prepared, PREPARED_JPEG_QUALITY)?,
        thumb: encode_jpeg(&thumbnail(&prepared), THUMB_JPEG_QUALITY)?,
    })
}

/// Decodes a file (every refusal named) and prepares it.
pub fn prepare_file(bytes: &[u8], name: &str, preprocess: &Preprocess) -> Result<Prepared, DecodeError> {
    prepare_rgb(&decode_image_for_side(bytes, name, preprocess.resize_side)?, preprocess)
}

/// Prepares straight RGBA pixels (a webcam frame, or a picture the browser decoded).
pub fn prepare_rgba(width: u32, height: u32, rgba: Vec<u8>, preprocess: &Preprocess) -> Result<Prepared, DecodeError> {
    prepare_rgb(&rgba_to_rgb(width, height, rgba)?, preprocess)
}

/// Decodes a prepared copy back to pixels.
pub fn decode_prepared(jpeg: &[u8]) -> Result<RgbImage, DecodeError> {
    graft_data::Pixels::Jpeg(jpeg.into()).rgb().map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let r = u8::try_from(x * 255 / w).unwrap_or(0);
            let g = u8::try_from(y * 255 / h).unwrap_or(0);
            image::Rgb([r, g, 128])
        })
    }

    #[test]
    fn prepared_copy_is_faithful_and_small() {
        let pre = Preprocess::imagenet(224);
        let original = scene(1200, 900);
        let prepared = prepare_rgb(&original, &pre).expect("prepares");
        let back = decode_prepared(&prepared.jpeg).expect("decodes");
        let expected = pre.prepare(&original);
        assert_eq!(back.dimensions(), expected.dimensions());
        let max_diff = back.as_raw().iter().zip(expected.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        assert!(max_diff <= 12, "prepared copy differs by up to {max_diff} levels");
        assert!(prepared.jpeg.len() < expected.as_raw().len() / 4, "{} bytes", prepared.jpeg.len());
        let thumb = decode_prepared(&prepared.thumb).expect("thumb decodes");
        assert_eq!(thumb.height(), THUMB_HEIGHT);
        // Re-preparing is deterministic: the same bytes every time.
        assert_eq!(prepare_rgb(&original, &pre).expect("again"), prepared);
    }

    #[test]
    fn rgba_frames_and_refusals() {
        let pre = Preprocess::imagenet(224);
        let frame = vec![200u8; 320 * 240 * 4];
        let p = prepare_rgba(320, 240, frame, &pre).expect("a webcam frame prepares");
        assert_eq!(decode_prepared(&p.jpeg).expect("decodes").dimensions(), (341, 256));
        assert!(matches!(prepare_rgba(10, 10, vec![0; 12], &pre), Err(DecodeError::Corrupt(_))));
        assert!(matches!(prepare_rgba(4, 4, vec![0; 64], &pre), Err(DecodeError::TooSmall { .. })));
        assert_eq!(prepare_file(b"", "x.jpg", &pre), Err(DecodeError::Empty));
    }
}
