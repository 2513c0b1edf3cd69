//! ZIP archives for the one-file downloads (a trained model, a whole project), through
//! the maintained `zip` crate. Entries are stored uncompressed: safetensors and photos barely
//! compress. Reading accepts stored or deflated entries (an archive re-zipped by an OS tool).

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Largest total size accepted when reading an archive (a zip bomb must not exhaust memory).
pub const MAX_UNPACKED_BYTES: u64 = 3 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("not a readable zip archive: {0}")]
    Invalid(String),
    #[error("the archive unpacks to more than {} MB", MAX_UNPACKED_BYTES >> 20)]
    TooLarge,
}

fn invalid(e: impl std::fmt::Display) -> ZipError {
    ZipError::Invalid(e.to_string())
}

/// Packs `(name, bytes)` files into a ZIP archive (ZIP64 where a file needs it).
pub fn write_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ZipError> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(data.len() as u64 >= u64::from(u32::MAX));
        writer.start_file(name.as_str(), options).map_err(invalid)?;
        writer.write_all(data).map_err(invalid)?;
    }
    Ok(writer.finish().map_err(invalid)?.into_inner())
}

/// Every file of an archive, in archive order (folders skipped).
pub fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ZipError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(invalid)?;
    let mut total = 0u64;
    let mut files = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(invalid)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(invalid)?.into_owned();
        // The declared size may lie: read at most what is left of the budget, plus one byte.
        let budget = MAX_UNPACKED_BYTES - total;
        let mut data = Vec::new();
        entry.take(budget + 1).read_to_end(&mut data).map_err(invalid)?;
        total += data.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(ZipError::TooLarge);
        }
        files.push((name, data));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_utf8_names() {
        let files =
            vec![("model.safetensors".to_string(), vec![7u8; 1000]), ("étiquettes/ça.json".into(), b"[]".to_vec())];
        let zip = write_zip(&files).expect("write");
        assert_eq!(&zip[..4], b"PK\x03\x04");
        assert_eq!(read_zip(&zip).expect("read"), files);
        assert!(read_zip(b"PK\x03\x04 not really").is_err());
    }
}
