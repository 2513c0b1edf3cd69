//! Does a JPEG reach its end-of-image marker? JPEG decoders fill a truncated scan with grey and
//! report success, so a file cut at 5 % of its length would train as a mostly grey picture.
//! Walking the marker segments (skipping entropy-coded data) tells a complete file from a cut one.

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegEnd {
    /// The end-of-image marker was reached.
    Complete,
    /// The bytes ran out first: `at` is how far the structure was intact.
    Truncated { at: usize },
    /// The structure is not what the standard describes (left to the decoder to judge).
    Unrecognised,
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const TEM: u8 = 0x01;

fn is_restart(marker: u8) -> bool {
    (0xD0..=0xD7).contains(&marker)
}

/// Walks `bytes` (which must start with SOI) from marker to marker up to EOI.
pub fn jpeg_end(bytes: &[u8]) -> JpegEnd {
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != SOI {
        return JpegEnd::Unrecognised;
    }
    let mut pos = 2;
    loop {
        // Optional fill bytes before a marker.
        while bytes.get(pos) == Some(&0xFF) && bytes.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&ff), Some(&marker)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return JpegEnd::Truncated { at: pos };
        };
        if ff != 0xFF {
            return JpegEnd::Unrecognised;
        }
        pos += 2;
        match marker {
            EOI => return JpegEnd::Complete,
            m if is_restart(m) || m == TEM => continue,
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return JpegEnd::Truncated { at: pos };
        };
        if len < 2 {
            return JpegEnd::Unrecognised;
        }
        if pos + len > bytes.len() {
            return JpegEnd::Truncated { at: pos };
        }
        pos += len;
        if marker == SOS {
            match skip_entropy_coded(bytes, pos) {
                Some(next_marker) => pos = next_marker,
                None => return JpegEnd::Truncated { at: bytes.len() },
            }
        }
    }
}

/// Skips scan data after an SOS header: `FF 00` is a stuffed byte and `FF D0..D7` a restart
/// marker; any other `FF xx` starts the next segment. Returns its position, `None` at the end.
fn skip_entropy_coded(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let offset = bytes.get(pos..)?.iter().position(|&b| b == 0xFF)?;
        pos += offset;
        let next = *bytes.get(pos + 1)?;
        if next == 0x00 || is_restart(next) {
            pos += 2;
        } else if next == 0xFF {
            pos += 1;
        } else {
            return Some(pos);
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode");
        out.into_inner()
    }

    #[test]
    fn complete_and_cut_files() {
        let full = tiny_jpeg();
        assert_eq!(jpeg_end(&full), JpegEnd::Complete);
        for cut in [full.len() - 1, full.len() - 2, full.len() / 2, full.len() / 20, 3] {
            assert!(matches!(jpeg_end(&full[..cut]), JpegEnd::Truncated { .. }), "cut at {cut}");
        }
        // Trailing bytes after EOI (some cameras append data) are fine.
        let mut trailing = full;
        trailing.extend_from_slice(b"trailer");
        assert_eq!(jpeg_end(&trailing), JpegEnd::Complete);
        assert_eq!(jpeg_end(b"GIF89a"), JpegEnd::Unrecognised);
    }
}
