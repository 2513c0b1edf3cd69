//! Every kind of bad or awkward file a user drops: each is either decoded correctly or refused
//! with a specific reason, never a panic.

#![allow(clippy::cast_possible_truncation)] // test fixtures build small synthetic values

use std::io::Cursor;

use graft_data::{decode_image, decode_image_named, Dataset, DecodeError, LabelledBytes, Preprocess};
use image::{ImageFormat, Rgb, RgbImage};

fn jpeg(w: u32, h: u32, f: impl Fn(u32, u32) -> Rgb<u8>) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, f);
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn red_left_blue_right(w: u32, h: u32) -> Vec<u8> {
    jpeg(w, h, move |x, _| if x < w / 2 { Rgb([230, 20, 20]) } else { Rgb([20, 20, 230]) })
}

/// Inserts an EXIF APP1 segment with the given orientation right after the JPEG SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08"); // big-endian TIFF, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    drop(enc.write_header().unwrap());
    out
}

#[test]
fn empty_and_non_image_files_are_named_as_such() {
    assert_eq!(decode_image(b""), Err(DecodeError::Empty));
    assert_eq!(decode_image(b"just some text, renamed to photo.jpg\n"), Err(DecodeError::NotAnImage));
}

#[test]
fn truncated_jpeg_is_refused_by_name() {
    let full = jpeg(256, 192, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    assert!(decode_image(&full).is_ok());
    // The decoder alone fills a cut scan with grey and succeeds: the walk to EOI catches it.
    for fraction in [0.05, 0.33, 0.9] {
        let cut = &full[..(full.len() as f64 * fraction) as usize];
        let err = decode_image(cut).expect_err("a cut JPEG must be refused");
        assert!(matches!(err, DecodeError::Truncated { format: "JPEG", .. }), "cut at {fraction}: {err:?}");
        assert!(err.to_string().starts_with("truncated JPEG file"), "{err}");
    }
    let last_byte_missing = &full[..full.len() - 1];
    assert!(matches!(decode_image(last_byte_missing), Err(DecodeError::Truncated { .. })));
}

fn encoded(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap_or_else(|e| panic!("encode {format:?}: {e}"));
    out.into_inner()
}

#[test]
fn tiff_tga_pnm_ico_qoi_are_read() {
    let rgb = image::DynamicImage::ImageRgb8(RgbImage::from_fn(24, 16, |x, _| {
        if x < 12 {
            Rgb([200, 30, 30])
        } else {
            Rgb([30, 30, 200])
        }
    }));
    let rgba = image::DynamicImage::ImageRgba8(rgb.to_rgba8());
    for (format, img, name) in [
        (ImageFormat::Tiff, &rgb, "scan.tiff"),
        (ImageFormat::Tga, &rgb, "old.tga"),
        (ImageFormat::Pnm, &rgb, "export.ppm"),
        (ImageFormat::Ico, &rgba, "favicon.ico"),
        (ImageFormat::Qoi, &rgb, "frame.qoi"),
        (ImageFormat::Bmp, &rgb, "paint.bmp"),
    ] {
        let bytes = encoded(img, format);
        let decoded = decode_image_named(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.dimensions(), (24, 16), "{name}");
        assert!(decoded.get_pixel(2, 2).0[0] > 150 && decoded.get_pixel(20, 2).0[2] > 150, "{name}");
    }
    // TGA has no signature: without its extension it is unrecognised, never guessed from a
    // misleading one.
    let tga = encoded(&rgb, ImageFormat::Tga);
    assert_eq!(decode_image(&tga), Err(DecodeError::NotAnImage));
    assert!(decode_image_named(b"plain text", "notes.tga").is_err());
    assert_eq!(decode_image_named(b"plain text", "photo.jpg"), Err(DecodeError::NotAnImage));
}

#[test]
fn slivers_and_extreme_aspect_ratios_are_refused_and_wide_pictures_bounded() {
    let png_of = |w: u32, h: u32| encoded(&image::DynamicImage::ImageRgb8(RgbImage::new(w, h)), ImageFormat::Png);
    assert_eq!(decode_image(&png_of(12_000, 1)), Err(DecodeError::TooSmall { width: 12_000, height: 1 }));
    assert_eq!(decode_image(&png_of(1, 12_000)), Err(DecodeError::TooSmall { width: 1, height: 12_000 }));
    assert_eq!(decode_image(&png_of(12_000, 40)), Err(DecodeError::ExtremeAspect { width: 12_000, height: 40 }));
    // A 10:1 panorama is used, and its prepared copy stays bounded (2:1 at the resize side).
    let pre = Preprocess::imagenet(224);
    let mut ds = Dataset::new(vec!["a".into(), "b".into()], pre);
    ds.add(LabelledBytes { label: 0, name: "pano.png".into(), bytes: png_of(4000, 400) }).unwrap();
    assert_eq!(ds.items[0].image.rgb().unwrap().dimensions(), (512, 256));
}

#[test]
fn decompression_bombs_and_huge_images_are_refused_before_decoding() {
    let bomb = png_header_only(100_000, 100_000);
    assert_eq!(decode_image(&bomb), Err(DecodeError::TooLarge { width: 100_000, height: 100_000 }));
    // A real 20000x20000 (1-bit, so the file is small) is refused by its size too.
    let mut big = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut big, 20_000, 20_000);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![0u8; 20_000 / 8 * 20_000]).unwrap();
    }
    assert!(
        matches!(decode_image(&big), Err(DecodeError::TooLarge { width: 20_000, height: 20_000 })),
        "{:?}",
        decode_image(&big).err()
    );
}

#[test]
fn exif_orientation_is_applied() {
    let plain = red_left_blue_right(40, 20);
    let rotated = with_exif_orientation(&plain, 6); // "rotate 90° clockwise to display"
    let img = decode_image(&rotated).unwrap();
    assert_eq!(img.dimensions(), (20, 40));
    // After a clockwise turn, the left (red) half is on top.
    assert!(img.get_pixel(10, 5).0[0] > 150 && img.get_pixel(10, 35).0[2] > 150);
}

#[test]
fn unusual_colour_modes_become_rgb() {
    // CMYK JPEG: cyan ink only → a cyan-ish pixel (low red, high green/blue).
    let mut cmyk = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut cmyk, 90);
    let pixels: Vec<u8> = (0..16 * 16).flat_map(|_| [255u8, 0, 0, 0]).collect();
    enc.encode(&pixels, 16, 16, jpeg_encoder::ColorType::Cmyk).unwrap();
    let img = decode_image(&cmyk).unwrap();
    let p = img.get_pixel(8, 8).0;
    assert!(p[0] < 100 && p[1] > 150 && p[2] > 150, "cmyk cyan decoded as {p:?}");

    // 16-bit PNG.
    let img16 = image::ImageBuffer::<Rgb<u16>, _>::from_fn(8, 8, |_, _| Rgb([65535u16, 32768, 0]));
    let mut out = Cursor::new(Vec::new());
    img16.write_to(&mut out, ImageFormat::Png).unwrap();
    let p = decode_image(out.get_ref()).unwrap().get_pixel(0, 0).0;
    assert_eq!(p, [255, 128, 0]);

    // Palette PNG with a transparent entry → flattened onto white.
    let mut pal = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut pal, 8, 8);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 0, 255]);
        enc.set_trns(vec![255, 0]);
        let mut w = enc.write_header().unwrap();
        let indices: Vec<u8> = (0..64).map(|i| (i % 2) as u8).collect();
        w.write_image_data(&indices).unwrap();
    }
    let img = decode_image(&pal).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0]);
    assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);

    // Animated GIF → first frame.
    let mut gif_bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif_bytes, 8, 8, &[0, 200, 0, 200, 0, 0]).unwrap();
        for index in [0u8, 1u8] {
            let frame = gif::Frame {
                width: 8,
                height: 8,
                buffer: std::borrow::Cow::Owned(vec![index; 64]),
                ..Default::default()
            };
            enc.write_frame(&frame).unwrap();
        }
    }
    assert_eq!(decode_image(&gif_bytes).unwrap().get_pixel(0, 0).0, [0, 200, 0]);
}

#[test]
fn dataset_keeps_good_files_and_reports_each_bad_one() {
    let pre = Preprocess::imagenet(64);
    let files = vec![
        LabelledBytes { label: 0, name: "a/good.jpg".into(), bytes: red_left_blue_right(80, 60) },
        LabelledBytes { label: 0, name: "a/empty.jpg".into(), bytes: vec![] },
        LabelledBytes { label: 1, name: "b/notes.png".into(), bytes: b"hello".to_vec() },
        LabelledBytes { label: 1, name: "b/good.jpg".into(), bytes: jpeg(50, 90, |_, _| Rgb([1, 2, 3])) },
    ];
    let ds = Dataset::from_labelled_bytes(vec!["a".into(), "b".into()], files, pre);
    assert_eq!(ds.items.len(), 2);
    assert_eq!(ds.counts(), vec![1, 1]);
    let bad: Vec<_> = ds.errors.iter().map(|e| (e.file.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        bad,
        vec![("a/empty.jpg", "empty file (0 bytes)"), ("b/notes.png", "not an image (unrecognised file contents)")]
    );
    // Kept images are stored at the resize side (shorter side 73 for a 64 input), as the page's
    // prepared copies are: JPEG bytes, not decoded pixels (a large folder must fit in memory).
    assert_eq!(ds.items[0].image.rgb().unwrap().height(), pre.resize_side);
    assert!(ds.items.iter().all(|i| matches!(i.image, graft_data::Pixels::Jpeg(_))));
    assert!(ds.validate().is_ok());

    let one_class = Dataset::from_labelled_bytes(vec!["a".into()], vec![], pre);
    assert!(one_class.validate().unwrap_err().to_string().contains("at least 2 classes"));
    let empty = Dataset::from_labelled_bytes(
        vec!["a".into(), "b".into()],
        vec![LabelledBytes { label: 0, name: "x.jpg".into(), bytes: red_left_blue_right(8, 8) }],
        pre,
    );
    assert!(empty.validate().unwrap_err().to_string().contains("class `b` has no usable images"));
}

#[test]
fn class_names_must_be_named_and_distinct() {
    use graft_data::{check_class_names, DatasetError};
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(check_class_names(&names(&[" cat ", "dog"])), Ok(names(&["cat", "dog"])));
    assert_eq!(check_class_names(&names(&["cat", "   "])), Err(DatasetError::UnnamedClass { index: 2 }));
    assert_eq!(check_class_names(&names(&["", "dog"])), Err(DatasetError::UnnamedClass { index: 1 }));
    assert_eq!(check_class_names(&names(&["Cat", " cat"])), Err(DatasetError::DuplicateClass("cat".into())));
    let pre = Preprocess::imagenet(64);
    let files = vec![
        LabelledBytes { label: 0, name: "a.jpg".into(), bytes: red_left_blue_right(16, 16) },
        LabelledBytes { label: 1, name: "b.jpg".into(), bytes: red_left_blue_right(16, 16) },
    ];
    let ds = Dataset::from_labelled_bytes(names(&["Dog", "dog "]), files, pre);
    assert!(ds.validate().unwrap_err().to_string().contains("both called `dog`"));
}
