//! Image → normalised CHW floats: the eval transform (resize shorter side, centre crop) and the
//! train augmentation (random resized crop, horizontal flip, light colour jitter).

use image::imageops::{self, FilterType};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::num::round_u32;
use crate::rng::SeededRng;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// torchvision's ImageNet statistics (inputs scaled to [0, 1] first).
    pub const IMAGENET: Self = Self { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

/// Train-time augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Smallest crop area, as a fraction of the image (torchvision uses 0.08; few-shot data
    /// keeps more of the object).
    pub min_scale: f32,
    pub flip: bool,
    /// Brightness/contrast/saturation factors are drawn from `1 ± jitter`.
    pub jitter: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { min_scale: 0.35, flip: true, jitter: 0.2 }
    }
}

/// Longest side of a prepared image, in multiples of its shorter side.
pub const MAX_PREPARED_ASPECT: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Side of the square network input (224 for the pretrained model).
    pub input_size: u32,
    /// Shorter side after resizing, before the centre crop (256 for 224).
    pub resize_side: u32,
    pub norm: Normalization,
}

impl Preprocess {
    /// The ImageNet recipe scaled to `input_size` (resize 256 → crop 224 at full size).
    pub fn imagenet(input_size: u32) -> Self {
        Self { input_size, resize_side: (input_size * 256 + 112) / 224, norm: Normalization::IMAGENET }
    }

    /// Floats per image (3 × input × input).
    pub fn image_len(&self) -> usize {
        3 * (self.input_size as usize).pow(2)
    }

    /// Resizes the shorter side to `resize_side`: the form images are kept in memory, so each
    /// epoch's crops are cheap and a dataset of phone photos stays small. A longer side beyond
    /// [`MAX_PREPARED_ASPECT`] × the shorter is centre-cropped first, which bounds every prepared
    /// image (a 4000×200 panorama would otherwise become 5120×256).
    pub fn prepare(&self, image: &RgbImage) -> RgbImage {
        let (w, h) = image.dimensions();
        let short = w.min(h).max(1);
        let long_limit = short.saturating_mul(MAX_PREPARED_ASPECT);
        let (cw, ch) = (w.min(long_limit), h.min(long_limit));
        let cropped;
        let image = if (cw, ch) == (w, h) {
            image
        } else {
            cropped = imageops::crop_imm(image, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
            &cropped
        };
        if short == self.resize_side {
            return image.clone();
        }
        let side = self.resize_side;
        // Bounded by MAX_PREPARED_ASPECT × resize_side.
        let scaled = |long: u32| round_u32(f64::from(long) * f64::from(side) / f64::from(short)).max(side);
        let (nw, nh) = if cw <= ch { (side, scaled(ch)) } else { (scaled(cw), side) };
        imageops::resize(image, nw, nh, FilterType::Triangle)
    }

    /// Eval transform on a prepared image: centre crop, normalise.
    pub fn eval(&self, prepared: &RgbImage) -> Vec<f32> {
        let (w, h) = prepared.dimensions();
        let side = self.input_size.min(w).min(h);
        let crop = imageops::crop_imm(prepared, (w - side) / 2, (h - side) / 2, side, side).to_image();
        let crop = self.fit(crop);
        self.normalize(&crop, [1.0, 1.0, 1.0], false)
    }

    /// Train transform on a prepared image: random resized crop, flip, colour jitter.
    pub fn train(&self, prepared: &RgbImage, augment: &Augment, rng: &mut SeededRng) -> Vec<f32> {
        let (w, h) = prepared.dimensions();
        let (x, y, cw, ch) = random_crop_box(w, h, augment.min_scale, rng);
        let crop = imageops::crop_imm(prepared, x, y, cw, ch).to_image();
        let mut crop = imageops::resize(&crop, self.input_size, self.input_size, FilterType::Triangle);
        if augment.flip && rng.next_f32() < 0.5 {
            imageops::flip_horizontal_in_place(&mut crop);
        }
        let j = augment.jitter;
        let factors = [rng.uniform(1.0 - j, 1.0 + j), rng.uniform(1.0 - j, 1.0 + j), rng.uniform(1.0 - j, 1.0 + j)];
        self.normalize(&crop, factors, j > 0.0)
    }

    fn fit(&self, crop: RgbImage) -> RgbImage {
        if crop.dimensions() == (self.input_size, self.input_size) {
            crop
        } else {
            imageops::resize(&crop, self.input_size, self.input_size, FilterType::Triangle)
        }
    }

    /// HWC u8 → CHW f32, with optional (brightness, contrast, saturation) factors.
    fn normalize(&self, image: &RgbImage, [bright, contrast, sat]: [f32; 3], jitter: bool) -> Vec<f32> {
        let n = (image.width() * image.height()) as usize;
        let mut out = vec![0.0f32; 3 * n];
        let mean_luma =
            if jitter { image.pixels().map(|p| luma(p.0) / 255.0).sum::<f32>() / n as f32 * bright } else { 0.0 };
        for (i, p) in image.pixels().enumerate() {
            let mut rgb = [p.0[0] as f32 / 255.0, p.0[1] as f32 / 255.0, p.0[2] as f32 / 255.0];
            if jitter {
                let grey = luma(p.0) / 255.0 * bright;
                for c in &mut rgb {
                    let v = *c * bright;
                    let v = grey + (v - grey) * sat;
                    *c = (mean_luma + (v - mean_luma) * contrast).clamp(0.0, 1.0);
                }
            }
            for (c, v) in rgb.iter().enumerate() {
                out[c * n + i] = (v - self.norm.mean[c]) / self.norm.std[c];
            }
        }
        out
    }
}

fn luma(p: [u8; 3]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// torchvision's RandomResizedCrop box: area in `[min_scale, 1]`, aspect in `[3/4, 4/3]`,
/// ten tries, then the largest centred square.
fn random_crop_box(w: u32, h: u32, min_scale: f32, rng: &mut SeededRng) -> (u32, u32, u32, u32) {
    let area = (w * h) as f32;
    for _ in 0..10 {
        let target = area * rng.uniform(min_scale, 1.0);
        let log_ratio = rng.uniform((3.0f32 / 4.0).ln(), (4.0f32 / 3.0).ln());
        let ratio = log_ratio.exp();
        let cw = round_u32(f64::from((target * ratio).sqrt()));
        let ch = round_u32(f64::from((target / ratio).sqrt()));
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let x = rng.below_u32(w - cw + 1);
            let y = rng.below_u32(h - ch + 1);
            return (x, y, cw, ch);
        }
    }
    let side = w.min(h);
    ((w - side) / 2, (h - side) / 2, side, side)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
    }

    #[test]
    fn prepare_resizes_shorter_side_and_eval_gives_normalised_crop() {
        let p = Preprocess::imagenet(224);
        assert_eq!(p.resize_side, 256);
        let prepared = p.prepare(&gradient(640, 480));
        assert_eq!(prepared.dimensions(), (341, 256));
        let portrait = p.prepare(&gradient(100, 300));
        assert_eq!(portrait.dimensions(), (256, 512), "3:1 is cropped to 2:1 before resizing");
        let strip = p.prepare(&gradient(4000, 250));
        assert_eq!(strip.dimensions(), (512, 256));
        let x = p.eval(&prepared);
        assert_eq!(x.len(), p.image_len());
        // Blue channel is constant 128 → (128/255 - 0.406) / 0.225.
        let blue = x[2 * 224 * 224 + 5];
        assert!((blue - (128.0 / 255.0 - 0.406) / 0.225).abs() < 1e-3, "{blue}");
    }

    #[test]
    fn train_transform_is_seeded_and_varies() {
        let p = Preprocess::imagenet(64);
        let prepared = p.prepare(&gradient(300, 200));
        let aug = Augment::default();
        let a = p.train(&prepared, &aug, &mut SeededRng::new(1));
        let b = p.train(&prepared, &aug, &mut SeededRng::new(1));
        let c = p.train(&prepared, &aug, &mut SeededRng::new(2));
        assert_eq!(a.len(), p.image_len());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
