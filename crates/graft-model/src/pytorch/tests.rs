use std::collections::HashMap;

use super::{is_legacy_checkpoint, read_state_dict};

const ZIP: &[u8] = include_bytes!("../../tests/data/tiny_state_dict.pth");
const LEGACY_NESTED: &[u8] = include_bytes!("../../tests/data/tiny_nested_legacy.pth");
const EXPECTED: &str = include_str!("../../tests/data/tiny_state_dict.json");

#[derive(serde::Deserialize)]
struct Expected {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Every floating-point tensor equals torch's own values (scripts/make_pytorch_fixtures.py),
/// integer buffers are left out.
fn check(read: Vec<(String, Vec<usize>, Vec<f32>)>) {
    let expected: HashMap<String, Expected> = serde_json::from_str(EXPECTED).unwrap();
    let read: HashMap<_, _> = read.into_iter().map(|(n, s, v)| (n, (s, v))).collect();
    let mut names: Vec<_> = read.keys().cloned().collect();
    names.sort();
    let mut want: Vec<_> = expected.keys().cloned().collect();
    want.sort();
    assert_eq!(names, want, "the float tensors, num_batches_tracked left out");
    for (name, e) in &expected {
        let (shape, values) = &read[name];
        assert_eq!(shape, &e.shape, "{name}");
        assert_eq!(values, &e.values, "{name}: values (torch's, widened to f32)");
    }
}

#[test]
fn a_zip_checkpoint_reads_every_dtype_stride_and_shared_storage_as_torch_saved_it() {
    assert!(!is_legacy_checkpoint(ZIP));
    check(read_state_dict(ZIP).unwrap());
}

#[test]
fn a_legacy_checkpoint_with_the_state_dict_under_a_key_reads_the_same() {
    assert!(is_legacy_checkpoint(LEGACY_NESTED));
    check(read_state_dict(LEGACY_NESTED).unwrap());
}

#[test]
fn damaged_or_foreign_files_are_refused_with_a_reason_never_a_panic() {
    assert!(read_state_dict(b"hello").unwrap_err().contains("not a PyTorch checkpoint"));
    // Every truncation of both files: an error (or, for the ZIP, whatever the archive still
    // holds), never a panic.
    for file in [ZIP, LEGACY_NESTED] {
        for cut in (0..file.len()).step_by(7) {
            let _ = read_state_dict(&file[..cut]);
        }
    }
    // A flipped byte anywhere in the legacy file's pickles.
    for i in (0..LEGACY_NESTED.len()).step_by(3) {
        let mut bad = LEGACY_NESTED.to_vec();
        bad[i] ^= 0x5a;
        let _ = read_state_dict(&bad);
    }
    let cut = &LEGACY_NESTED[..LEGACY_NESTED.len() - 10];
    assert!(read_state_dict(cut).unwrap_err().contains("ends"), "{:?}", read_state_dict(cut));
}
