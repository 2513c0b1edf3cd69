//! The ingest benchmark: synthetic photos (JPEG) decoded, resized and stored as prepared copies
//! per second — what dropping a folder of pictures costs — at a webcam's 640×480 and at a
//! phone's 12 megapixels (4032×3024, EXIF-rotated like a portrait shot).

use graft_data::SeededRng;
use graft_train::BenchRow;
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use web_time::Instant;

use crate::ingest::prepare_file;

/// A webcam-sized photo.
pub const SMALL_PHOTO: (u32, u32) = (640, 480);
/// A 12-megapixel phone photo.
pub const PHONE_PHOTO: (u32, u32) = (4032, 3024);

/// A textured 640×480 JPEG, different for each seed (flat colour would decode unrealistically fast).
pub fn synthetic_photo(seed: u64) -> Vec<u8> {
    synthetic_jpeg(seed, SMALL_PHOTO, 0)
}

/// A textured 12-megapixel JPEG whose EXIF says "rotate 90° clockwise", as a phone held upright
/// writes it. Sensor-like grain makes it about as large as a phone's (2–3 MB), so the entropy
/// decoding — the part a reduced-scale decode cannot skip — costs what it costs on real photos.
pub fn synthetic_phone_photo(seed: u64) -> Vec<u8> {
    with_exif_orientation(&synthetic_jpeg(seed, PHONE_PHOTO, 6), 6)
}

/// Inserts an EXIF APP1 segment holding only an orientation right after the JPEG's SOI marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec(); // big-endian TIFF, first IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry:
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation,
    tiff.extend_from_slice(&3u16.to_be_bytes()); // a SHORT,
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one of them
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, no next IFD
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let length = u16::try_from(app1.len() + 2).unwrap_or(u16::MAX);
    let mut out = jpeg[..2.min(jpeg.len())].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2.min(jpeg.len())..]);
    out
}

/// `grain`: the amplitude of per-pixel noise, in levels.
fn synthetic_jpeg(seed: u64, (width, height): (u32, u32), grain: u32) -> Vec<u8> {
    let mut rng = SeededRng::new(seed);
    // The texture's scale follows the picture's, so a phone photo is as busy as a small one.
    let zoom = 640.0 / width as f32;
    let (a, b) = (rng.uniform(0.01, 0.05) * zoom, rng.uniform(0.01, 0.05) * zoom);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let v = |k: f32| {
            let s = ((fx * a * k).sin() + (fy * b / k).cos() + ((fx + fy) * 0.013 * zoom * k).sin()) * 42.0 + 128.0;
            u8::try_from(graft_data::round_u32(f64::from(s.clamp(0.0, 255.0)))).unwrap_or(u8::MAX)
        };
        // A cheap per-pixel hash, so the grain is the same for a seed on every machine.
        let noise = |c: u32| {
            let h = (x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2_AE3D)) >> 7;
            if grain == 0 {
                0.0
            } else {
                (h % (2 * grain + 1)) as f32 - grain as f32
            }
        };
        #[allow(clippy::cast_possible_truncation)] // clamped to a byte's range first
        let px = |k: f32, c: u32| (f32::from(v(k)) + noise(c)).clamp(0.0, 255.0) as u8;
        image::Rgb([px(1.0, 0), px(1.7, 1), px(2.3, 2)])
    });
    let mut out = Vec::new();
    // A synthetic photo always encodes; an empty buffer would only make the row faster.
    let _ = JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image);
    out
}

/// Decodes and prepares `count` synthetic 640×480 photos (224 input); one row of the benchmark.
pub fn bench_ingest(count: usize) -> BenchRow {
    let photos: Vec<Vec<u8>> = (0..count.max(1)).map(|i| synthetic_photo(i as u64)).collect();
    ingest_row(&photos, SMALL_PHOTO, "")
}

/// Decodes and prepares `count` synthetic 12-megapixel phone photos; one row of the benchmark.
pub fn bench_ingest_phone(count: usize) -> BenchRow {
    let photos: Vec<Vec<u8>> = (0..count.max(1)).map(|i| synthetic_phone_photo(i as u64)).collect();
    ingest_row(&photos, PHONE_PHOTO, ", EXIF-rotated")
}

fn ingest_row(photos: &[Vec<u8>], (width, height): (u32, u32), note: &str) -> BenchRow {
    let pre = graft_train::TrainConfig::default().preprocess();
    let t0 = Instant::now();
    let prepared = photos.iter().filter(|p| prepare_file(p, "photo.jpg", &pre).is_ok()).count();
    let seconds = t0.elapsed().as_secs_f32().max(1e-6);
    #[allow(clippy::cast_precision_loss)] // a handful of photos
    let images_per_sec = prepared as f32 / seconds;
    BenchRow {
        what: format!("ingest: decode + prepare {width}x{height} JPEG{note}"),
        batch: photos.len(),
        images_per_sec,
        #[allow(clippy::cast_precision_loss)]
        ms_per_batch: seconds * 1000.0 / photos.len() as f32,
        gflops_per_sec: None,
        device_bytes_reserved: None,
        dispatches: None,
        op_groups: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ingest_row_counts_what_it_prepared() {
        let row = super::bench_ingest(2);
        assert_eq!(row.batch, 2);
        assert!(row.images_per_sec > 0.0);
        assert_ne!(super::synthetic_photo(1), super::synthetic_photo(2));
    }

    #[test]
    fn phone_photo_is_rotated_and_prepared_upright() {
        let photo = super::synthetic_phone_photo(3);
        let image = graft_data::decode_image(&photo).expect("decodes");
        assert_eq!(image.dimensions(), (3024, 4032), "EXIF orientation 6 turns it upright");
        let pre = graft_train::TrainConfig::default().preprocess();
        let prepared = crate::ingest::prepare_file(&photo, "phone.jpg", &pre).expect("prepares");
        let back = crate::ingest::decode_prepared(&prepared.jpeg).expect("decodes");
        assert_eq!(back.dimensions(), (256, 341));
        let row = super::bench_ingest_phone(1);
        assert!(row.what.contains("4032x3024") && row.images_per_sec > 0.0, "{row:?}");
    }
}
