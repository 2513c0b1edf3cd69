//! Writes synthetic 12-megapixel phone photos (4032×3024, EXIF orientation 6, sensor-like grain)
//! for the browser test's phone-photo drop: `make_phone_photos OUT_DIR COUNT`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().ok_or("usage: make_phone_photos OUT_DIR COUNT")?);
    let count: u64 = args.next().ok_or("usage: make_phone_photos OUT_DIR COUNT")?.parse()?;
    std::fs::create_dir_all(&out)?;
    let mut bytes = 0;
    for i in 0..count {
        let photo = graft_project::synthetic_phone_photo(1000 + i);
        bytes += photo.len();
        std::fs::write(out.join(format!("IMG_{:04}.jpg", 1000 + i)), photo)?;
    }
    println!("{count} phone photos, {:.1} MB, in {}", bytes as f64 / 1e6, out.display());
    Ok(())
}
