//! Writes a large labelled set for the browser test: `N` variants per class of the test photos
//! (random crops, flips, colour shifts), as JPEG and PNG files in `OUT/<class>/`.
//!
//! `cargo run --release -p graft-data --example make_large_set -- data/photos data/large 400`

use std::path::Path;

use graft_data::{decode_image, round_u32, SeededRng};
use image::imageops::{self, FilterType};
use image::{ImageFormat, RgbImage};

fn variant(photo: &RgbImage, rng: &mut SeededRng) -> RgbImage {
    let (w, h) = photo.dimensions();
    let scale = rng.uniform(0.6, 1.0);
    let (cw, ch) =
        (round_u32(f64::from(w) * f64::from(scale)).max(16), round_u32(f64::from(h) * f64::from(scale)).max(16));
    let (x, y) = (rng.below_u32(w - cw + 1), rng.below_u32(h - ch + 1));
    let mut img = imageops::crop_imm(photo, x, y, cw, ch).to_image();
    // Phone-camera-ish sizes, so decoding and resizing cost what they do for users.
    let target = rng.uniform(320.0, 640.0);
    let s = f64::from(target) / f64::from(cw.max(ch));
    img = imageops::resize(
        &img,
        round_u32(f64::from(cw) * s).max(16),
        round_u32(f64::from(ch) * s).max(16),
        FilterType::Triangle,
    );
    if rng.next_f32() < 0.5 {
        imageops::flip_horizontal_in_place(&mut img);
    }
    let gain = [rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)];
    for p in img.pixels_mut() {
        for (c, g) in p.0.iter_mut().zip(gain) {
            *c = u8::try_from(round_u32(f64::from(*c) * f64::from(g)).min(255)).unwrap_or(u8::MAX);
        }
    }
    img
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [photos, out, per_class] = args.as_slice() else {
        return Err("usage: make_large_set PHOTOS_DIR OUT_DIR PER_CLASS".into());
    };
    let per_class: usize = per_class.parse()?;
    let mut classes: Vec<_> =
        std::fs::read_dir(photos)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    classes.sort();
    let mut rng = SeededRng::new(2024);
    for class in classes {
        let name = class.file_name().ok_or("bad folder")?.to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&class)?.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        let sources: Vec<RgbImage> = files.iter().filter_map(|f| decode_image(&std::fs::read(f).ok()?).ok()).collect();
        if sources.is_empty() {
            continue;
        }
        let dir = Path::new(out).join(&name);
        std::fs::create_dir_all(&dir)?;
        for i in 0..per_class {
            let img = variant(&sources[i % sources.len()], &mut rng);
            // Mostly JPEG, like camera pictures; every fourth a PNG.
            let (ext, format) = if i % 4 == 3 { ("png", ImageFormat::Png) } else { ("jpg", ImageFormat::Jpeg) };
            img.save_with_format(dir.join(format!("{name}-{i:04}.{ext}")), format)?;
        }
        println!("{name}: {per_class} pictures in {}", dir.display());
    }
    Ok(())
}
