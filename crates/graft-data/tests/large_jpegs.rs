//! Large JPEGs are decoded at reduced scale for their prepared copy: the copy must look as it did
//! when the whole picture was decoded and resized, orientation included, and every other file must
//! be read exactly as before.

#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)] // test fixtures

use std::io::Cursor;

use graft_data::{decode_image_for_side, decode_image_named, DecodeError, Preprocess};
use image::{ImageFormat, Rgb, RgbImage};

/// A busy photo-like texture (edges, gradients, fine detail), `w`×`h`.
fn texture(w: u32, h: u32) -> RgbImage {
    let s = 640.0 / w as f32;
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 * s, y as f32 * s);
        let wave = |k: f32| ((fx * 0.031 * k).sin() + (fy * 0.023 / k).cos() + ((fx + fy) * 0.011 * k).sin()) * 40.0;
        let edge = if (fx / 90.0).floor() as i32 % 2 == (fy / 70.0).floor() as i32 % 2 { 30.0 } else { -30.0 };
        let v = |k: f32| (128.0 + wave(k) + edge).clamp(0.0, 255.0) as u8;
        Rgb([v(1.0), v(1.6), v(2.2)])
    })
}

fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image).unwrap();
    out
}

/// Inserts an EXIF APP1 segment with the given orientation right after the JPEG SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Peak signal-to-noise ratio between two equally sized pictures, in dB.
fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let mse = sum / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

#[test]
fn phone_photo_prepared_copy_matches_the_full_decode() {
    let pre = Preprocess::imagenet(224);
    let original = texture(4032, 3024);
    let file = with_exif_orientation(&jpeg(&original, 90), 6);

    let full = decode_image_named(&file, "phone.jpg").unwrap();
    let reduced = decode_image_for_side(&file, "phone.jpg", pre.resize_side).unwrap();
    assert_eq!(full.dimensions(), (3024, 4032));
    // 1/8 scale, turned upright: 3024/8 × 4032/8.
    assert_eq!(reduced.dimensions(), (378, 504));

    let (today, now) = (pre.prepare(&full), pre.prepare(&reduced));
    assert_eq!(today.dimensions(), now.dimensions());
    let quality = psnr(&today, &now);
    assert!(quality > 33.0, "prepared copies differ: PSNR {quality:.1} dB");
    // The orientation was applied to the reduced picture too: compare with the wrong turn.
    let unturned = pre.prepare(&image::imageops::rotate270(&reduced));
    if unturned.dimensions() == today.dimensions() {
        assert!(psnr(&today, &unturned) < quality - 10.0);
    }
    println!("12-MP prepared copy, reduced decode vs full decode: PSNR {quality:.1} dB");
}

#[test]
fn reduction_stops_at_the_side_the_preparation_needs() {
    let pre = Preprocess::imagenet(224);
    let file = jpeg(&texture(1600, 1200), 90);
    // 1200 / 4 = 300 ≥ 256, 1200 / 8 = 150 < 256.
    assert_eq!(decode_image_for_side(&file, "a.jpg", pre.resize_side).unwrap().dimensions(), (400, 300));
    // A larger preparation side reduces less.
    assert_eq!(decode_image_for_side(&file, "a.jpg", 600).unwrap().dimensions(), (800, 600));
    assert_eq!(decode_image_for_side(&file, "a.jpg", 601).unwrap().dimensions(), (1600, 1200));
}

#[test]
fn small_and_non_jpeg_files_are_read_exactly_as_before() {
    let small = jpeg(&texture(640, 480), 90);
    assert_eq!(decode_image_for_side(&small, "s.jpg", 256), decode_image_named(&small, "s.jpg"));
    let mut png = Cursor::new(Vec::new());
    texture(2000, 1500).write_to(&mut png, ImageFormat::Png).unwrap();
    let png = png.into_inner();
    assert_eq!(decode_image_for_side(&png, "p.png", 256), decode_image_named(&png, "p.png"));
}

#[test]
fn grey_and_cmyk_phone_photos_decode() {
    let grey = image::DynamicImage::ImageRgb8(texture(2400, 1800)).to_luma8();
    let mut file = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 90).encode_image(&grey).unwrap();
    let reduced = decode_image_for_side(&file, "g.jpg", 256).unwrap();
    assert_eq!(reduced.dimensions(), (600, 450));
    let p = reduced.get_pixel(100, 100).0;
    assert!(p[0] == p[1] && p[1] == p[2], "grey stays grey: {p:?}");

    // CMYK is left to the full decoder (same picture either way).
    let mut cmyk = Vec::new();
    let pixels: Vec<u8> = (0..2400 * 1800).flat_map(|_| [255u8, 0, 0, 0]).collect();
    jpeg_encoder::Encoder::new(&mut cmyk, 90).encode(&pixels, 2400, 1800, jpeg_encoder::ColorType::Cmyk).unwrap();
    assert_eq!(decode_image_for_side(&cmyk, "c.jpg", 256), decode_image_named(&cmyk, "c.jpg"));
}

#[test]
fn broken_phone_photos_are_refused_as_before() {
    let file = jpeg(&texture(3000, 2000), 90);
    let cut = &file[..file.len() / 2];
    assert!(matches!(decode_image_for_side(cut, "cut.jpg", 256), Err(DecodeError::Truncated { .. })));
    // Scrambled entropy-coded data: whatever the full decoder says, the reduced path says too or decodes.
    let mut scrambled = file.clone();
    let middle = scrambled.len() / 2;
    for b in &mut scrambled[middle..middle + 2000] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let (reduced, full) = (decode_image_for_side(&scrambled, "x.jpg", 256), decode_image_named(&scrambled, "x.jpg"));
    assert_eq!(
        reduced.is_err(),
        full.is_err(),
        "reduced {reduced:?} vs full {:?}",
        full.as_ref().map(|i| i.dimensions())
    );
}
