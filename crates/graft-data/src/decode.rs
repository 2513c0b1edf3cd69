//! Decoding untrusted image bytes into RGB, with a specific reason for every refusal.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage, RgbaImage};

/// Largest accepted side, in pixels (a header claiming more is a decompression bomb).
pub const MAX_SIDE: u32 = 12_000;
/// Largest accepted image area, in pixels.
pub const MAX_PIXELS: u64 = 50_000_000;

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
    #[error("truncated or corrupt image: {0}")]
    Corrupt(String),
}

fn classify(err: ImageError) -> DecodeError {
    match err {
        ImageError::Unsupported(e) => DecodeError::Unsupported(e.to_string()),
        ImageError::Limits(e) => DecodeError::Corrupt(format!("refused by decoder limits: {e}")),
        other => DecodeError::Corrupt(other.to_string().trim().to_string()),
    }
}

/// Decodes JPEG/PNG/WebP/GIF (first frame)/BMP, applies EXIF orientation and converts any colour
/// mode (grey, palette, CMYK, 16-bit) to 8-bit RGB. Transparent pixels are flattened onto white,
/// so cut-out photos look as they do on a page.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = |limits: Limits| -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        if reader.format().is_none() {
            return Err(DecodeError::NotAnImage);
        }
        reader.limits(limits);
        Ok(reader)
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);

    // Read the header first so a bomb is refused, with its size, before any pixel buffer is
    // allocated (the dimension limits are checked here, not by the decoder).
    let mut header_limits = limits.clone();
    header_limits.max_image_width = None;
    header_limits.max_image_height = None;
    let header = reader(header_limits)?.into_decoder().map_err(classify)?;
    let (width, height) = header.dimensions();
    drop(header);
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(DecodeError::Corrupt("image has zero width or height".into()));
    }

    let mut decoder = reader(limits)?.into_decoder().map_err(classify)?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(flatten_on_white(&image))
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
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])])
    })
}
