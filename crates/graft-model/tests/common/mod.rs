//! What the parity tests of both backbones share: the repository, weight files, reference
//! values and the fixed input they were computed on.

#![allow(clippy::cast_possible_truncation, dead_code)] // fixtures build small synthetic values

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use graft_model::{ImageClassifier, WeightMap};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A converted checkpoint under static/weights/ (scripts/setup.sh writes them).
pub fn weights_file(name: &str) -> WeightMap {
    let path = repo().join("static/weights").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    WeightMap::from_safetensors_bytes(bytes).expect("weights parse")
}

/// Reference values written by scripts/make_reference*.py.
pub fn reference_from(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("crates/graft-model/tests/data").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The reference logits, row after row.
pub fn reference_logits(reference: &serde_json::Value) -> Vec<f32> {
    reference["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
        .collect()
}

/// Same formula as scripts/make_reference.py.
pub fn fixed_input(n: usize, size: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(n * 3 * size * size);
    for b in 0..n {
        for c in 0..3 {
            for h in 0..size {
                for w in 0..size {
                    let v = 2.0
                        * (0.05 * ((h + 1) * (c + 1)) as f64 + 0.03 * (w * (b + 1)) as f64).sin()
                        * (0.02 * (w + b) as f64).cos();
                    x.push(v as f32);
                }
            }
        }
    }
    x
}

/// A training step's loss: the model's 4 logits on a fixed 64² batch of 2, weighted so that
/// every logit's gradient differs.
pub fn weighted_logits(model: &ImageClassifier, device: &Device) -> Tensor<1> {
    let x = Tensor::<4>::from_data(TensorData::new(fixed_input(2, 64), [2, 3, 64, 64]), device);
    let weights = Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 3.0], [-1.0, 0.25, 2.0, -0.5]], device);
    (model.forward(x) * weights).sum()
}

/// A gradient's values (it must exist).
pub fn grad_values<const D: usize>(grad: Option<Tensor<D>>) -> Vec<f32> {
    grad.expect("a gradient").into_data().try_into_vec::<f32>().unwrap()
}

/// Each named gradient of `other` equals `reference`'s within 1e-3 of its largest entry.
pub fn assert_gradients_match(reference: &[(String, Vec<f32>)], other: &[(String, Vec<f32>)], what: &str) {
    for ((name, want), (_, got)) in reference.iter().zip(other) {
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let err = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / scale.max(1e-12);
        println!("{name}: largest |gradient| {scale:e}, relative difference {err:e}");
        assert!(scale > 0.0, "{name}: no gradient reached it");
        assert!(err < 1e-3, "{name}: {what} differs by {err} (relative)");
    }
}

/// Indices of `logits` from the largest down.
pub fn ranked(logits: &[f32]) -> Vec<usize> {
    let mut ranked: Vec<usize> = (0..logits.len()).collect();
    ranked.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    ranked
}
