//! Large JPEGs decoded at reduced scale in the DCT domain (1/2, 1/4 or 1/8): a 12-megapixel
//! phone photo needed only for a 256-pixel prepared copy is decoded straight to 504×378
//! instead of to 4032×3024 and then resized — the inverse DCT, colour conversion and the
//! resize all shrink by up to 64×.

use image::RgbImage;
use jpeg_decoder::{Decoder, PixelFormat};

/// The largest reduction (8, 4, 2 or 1) that keeps the shorter side at least `min_short`.
pub fn reduction_for(width: u32, height: u32, min_short: u32) -> u32 {
    let short = width.min(height);
    [8, 4, 2].into_iter().find(|&d| short.div_ceil(d) >= min_short).unwrap_or(1)
}

/// Decodes `bytes` (a JPEG whose header and size the caller has already checked) with the
/// largest reduction that keeps its shorter side at least `min_short`. `None` when no reduction
/// applies or this decoder cannot read it (16-bit, CMYK, or data only the full decoder tolerates):
/// the caller then decodes at full size, so every file is read exactly as before.
pub fn decode_jpeg_reduced(bytes: &[u8], width: u32, height: u32, min_short: u32) -> Option<RgbImage> {
    let reduction = reduction_for(width, height, min_short);
    if reduction == 1 {
        return None;
    }
    let (want_w, want_h) = (width.div_ceil(reduction), height.div_ceil(reduction));
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return None;
    }
    let (out_w, out_h) = decoder.scale(u16::try_from(want_w).ok()?, u16::try_from(want_h).ok()?).ok()?;
    let (out_w, out_h) = (u32::from(out_w), u32::from(out_h));
    if out_w.min(out_h) < min_short {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    match info.pixel_format {
        PixelFormat::RGB24 => RgbImage::from_raw(out_w, out_h, pixels),
        PixelFormat::L8 => {
            let rgb = pixels.iter().flat_map(|&l| [l, l, l]).collect();
            RgbImage::from_raw(out_w, out_h, rgb)
        }
        PixelFormat::L16 | PixelFormat::CMYK32 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_keeps_the_shorter_side() {
        assert_eq!(reduction_for(4032, 3024, 256), 8);
        assert_eq!(reduction_for(3024, 4032, 256), 8);
        assert_eq!(reduction_for(1920, 1080, 256), 4);
        assert_eq!(reduction_for(1024, 768, 256), 2);
        assert_eq!(reduction_for(640, 480, 256), 1);
        // 2041 / 8 rounds up to 256: the decoder's scaled size rounds up too.
        assert_eq!(reduction_for(2041, 2041, 256), 8);
        assert_eq!(reduction_for(2040, 2040, 256), 4);
        assert_eq!(reduction_for(300, 40, 256), 1);
    }
}
