//! The ingest benchmark: synthetic phone-sized photos (JPEG) decoded, resized and stored as
//! prepared copies per second — what dropping a folder of pictures costs.

use graft_data::SeededRng;
use graft_train::BenchRow;
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use web_time::Instant;

use crate::ingest::prepare_file;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

/// A textured 640×480 JPEG, different for each seed (flat colour would decode unrealistically fast).
pub fn synthetic_photo(seed: u64) -> Vec<u8> {
    let mut rng = SeededRng::new(seed);
    let (a, b) = (rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05));
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let v = |k: f32| {
            let s = ((fx * a * k).sin() + (fy * b / k).cos() + ((fx + fy) * 0.013 * k).sin()) * 42.0 + 128.0;
            u8::try_from(graft_data::round_u32(f64::from(s.clamp(0.0, 255.0)))).unwrap_or(u8::MAX)
        };
        image::Rgb([v(1.0), v(1.7), v(2.3)])
    });
    let mut out = Vec::new();
    // A synthetic photo always encodes; an empty buffer would only make the row faster.
    let _ = JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image);
    out
}

/// Decodes and prepares `count` synthetic photos (224 input); one row of the benchmark.
pub fn bench_ingest(count: usize) -> BenchRow {
    let photos: Vec<Vec<u8>> = (0..count.max(1)).map(|i| synthetic_photo(i as u64)).collect();
    let pre = graft_train::TrainConfig::default().preprocess();
    let t0 = Instant::now();
    let prepared = photos.iter().filter(|p| prepare_file(p, "photo.jpg", &pre).is_ok()).count();
    let seconds = t0.elapsed().as_secs_f32().max(1e-6);
    #[allow(clippy::cast_precision_loss)] // a handful of photos
    let images_per_sec = prepared as f32 / seconds;
    BenchRow {
        what: format!("ingest: decode + prepare {WIDTH}x{HEIGHT} JPEG"),
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
}
