//! Decoding untrusted image bytes into RGB, with a specific reason for every refusal.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage, RgbaImage};

use crate::jpeg_end::{jpeg_end, JpegEnd};
use crate::jpeg_scaled::decode_jpeg_reduced;

/// Largest accepted side, in pixels (a header claiming more is a decompression bomb).
pub const MAX_SIDE: u32 = 12_000;
/// Largest accepted image area, in pixels.
pub const MAX_PIXELS: u64 = 50_000_000;
/// Smallest accepted side: thinner pictures hold nothing to learn from.
pub const MIN_SIDE: u32 = 8;
/// Largest accepted ratio of the longer to the shorter side (a 12000×40 strip is not a photo).
pub const MAX_ASPECT: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not an image (unrecognised file contents)")]
    NotAnImage,
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    #[error("image too large: {width}x{height} pixels (limit {MAX_SIDE} per side, {MAX_PIXELS} in total)")]
    TooLarge { width: u32, height: u32 },
    #[error("image too small: {width}x{height} pixels (at least {MIN_SIDE} per side)")]
    TooSmall { width: u32, height: u32 },
    #[error(
        "extreme aspect ratio: {width}x{height} pixels (the longer side may be at most {MAX_ASPECT}x the shorter)"
    )]
    ExtremeAspect { width: u32, height: u32 },
    #[error("truncated {format} file: it ends after {intact} of its bytes, before the picture does")]
    Truncated { format: &'static str, intact: usize },
    #[error("corrupt image: {0}")]
    Corrupt(String),
}

impl DecodeError {
    /// A short name of the reason, for tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty file",
            DecodeError::NotAnImage => "not an image",
            DecodeError::Unsupported(_) => "unsupported format",
            DecodeError::TooLarge { .. } => "too large",
            DecodeError::TooSmall { .. } => "too small",
            DecodeError::ExtremeAspect { .. } => "extreme aspect ratio",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Corrupt(_) => "corrupt",
        }
    }

    /// Whether a browser's own decoder may still read the file (formats the Rust decoders do not
    /// know, such as AVIF, HEIC or SVG). Files refused for their content are not retried.
    pub fn other_decoder_may_read(&self) -> bool {
        matches!(self, DecodeError::NotAnImage | DecodeError::Unsupported(_))
    }
}

fn classify(err: ImageError) -> DecodeError {
    match err {
        ImageError::Unsupported(e) => DecodeError::Unsupported(e.to_string()),
        ImageError::Limits(e) => DecodeError::Corrupt(format!("refused by decoder limits: {e}")),
        other => DecodeError::Corrupt(other.to_string().trim().to_string()),
    }
}

/// The size rules every picture must pass, whichever decoder read it.
pub fn check_dimensions(width: u32, height: u32) -> Result<(), DecodeError> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    let (short, long) = (width.min(height), width.max(height));
    if short < MIN_SIDE {
        return Err(DecodeError::TooSmall { width, height });
    }
    if long > short.saturating_mul(MAX_ASPECT) {
        return Err(DecodeError::ExtremeAspect { width, height });
    }
    Ok(())
}

/// [`decode_image_named`] without a file name.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    decode_image_named(bytes, "")
}

/// [`decode_image_named`] for a picture that will be resized to a shorter side of `min_short`:
/// a large JPEG is decoded at reduced scale (see `jpeg_scaled`), still oriented and never below
/// `min_short`; every other file, and every refusal, is exactly as in [`decode_image_named`].
pub fn decode_image_for_side(bytes: &[u8], name: &str, min_short: u32) -> Result<RgbImage, DecodeError> {
    decode_checked(bytes, name, Some(min_short))
}

/// Decodes JPEG, PNG, WebP, GIF (first frame), BMP, TIFF, TGA, PNM, ICO, QOI, HDR, DDS and
/// farbfeld, applies EXIF orientation and converts any colour mode (grey, palette, CMYK, 16-bit)
/// to 8-bit RGB. Transparent pixels are flattened onto white, so cut-out photos look as they do
/// on a page. `name`'s extension is consulted only for formats without a signature (TGA).
pub fn decode_image_named(bytes: &[u8], name: &str) -> Result<RgbImage, DecodeError> {
    decode_checked(bytes, name, None)
}

fn decode_checked(bytes: &[u8], name: &str, min_short: Option<u32>) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let by_name = std::path::Path::new(name).extension().and_then(ImageFormat::from_extension);
    let reader = |limits: Limits| -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        if reader.format().is_none() {
            // Only signature-less formats are taken from the name: a text file called photo.jpg
            // must still be "not an image".
            match by_name {
                Some(format @ ImageFormat::Tga) => reader.set_format(format),
                _ => return Err(DecodeError::NotAnImage),
            }
        }
        reader.limits(limits);
        Ok(reader)
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);

    let format = reader(limits.clone())?.format();
    if format == Some(ImageFormat::Jpeg) {
        if let JpegEnd::Truncated { at } = jpeg_end(bytes) {
            return Err(DecodeError::Truncated { format: "JPEG", intact: at.min(bytes.len()) });
        }
    }

    // Read the header first so a bomb is refused, with its size, before any pixel buffer is
    // allocated (the dimension limits are checked here, not by the decoder).
    let mut header_limits = limits.clone();
    header_limits.max_image_width = None;
    header_limits.max_image_height = None;
    let mut header = match reader(header_limits)?.into_decoder() {
        Ok(header) => header,
        Err(e) => {
            // A PNG header claiming a huge size may stop the decoder before it reports one.
            if let Some((width, height)) = png_header_dimensions(bytes) {
                check_dimensions(width, height)?;
            }
            return Err(classify(e));
        }
    };
    let (width, height) = header.dimensions();
    let header_orientation = header.orientation().ok();
    drop(header);
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt("image has zero width or height".into()));
    }
    check_dimensions(width, height)?;

    if let (Some(ImageFormat::Jpeg), Some(min_short)) = (format, min_short) {
        if let Some(reduced) = decode_jpeg_reduced(bytes, width, height, min_short) {
            let mut image = DynamicImage::ImageRgb8(reduced);
            if let Some(orientation) = header_orientation {
                image.apply_orientation(orientation);
            }
            return Ok(flatten_on_white(&image));
        }
    }

    let mut decoder = reader(limits)?.into_decoder().map_err(classify)?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(flatten_on_white(&image))
}

/// Width and height from a PNG's IHDR chunk (always the first, at a fixed offset).
fn png_header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    Some((be(16)?, be(20)?))
}

/// Straight (non-premultiplied) RGBA pixels, as a browser canvas gives them, to RGB on white.
pub fn rgba_to_rgb(width: u32, height: u32, rgba: Vec<u8>) -> Result<RgbImage, DecodeError> {
    check_dimensions(width, height)?;
    let image = RgbaImage::from_raw(width, height, rgba)
        .ok_or_else(|| DecodeError::Corrupt(format!("{width}x{height} RGBA buffer has the wrong length")))?;
    Ok(flatten_on_white(&DynamicImage::ImageRgba8(image)))
}

fn flatten_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba: RgbaImage = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        // At most (255·255 + 127) / 255 = 255: always fits a byte.
        let blend = |c: u8| u8::try_from((u16::from(c) * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX);
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}
