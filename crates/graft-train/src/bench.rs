//! Throughput benchmark on synthetic input: frozen feature extraction, head-only steps on
//! cached features, and full fine-tune steps (forward + backward + AdamW over every weight).

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use graft_model::{HeadKind, HeadSpec, ImageClassifier, WeightMap, FEATURE_DIM};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::batch::read_matrix;
use crate::loss::{cross_entropy, smoothed_targets};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    pub what: String,
    pub batch: usize,
    pub images_per_sec: f32,
    pub ms_per_batch: f32,
    /// Achieved compute rate, counting MobileNetV2 as ~0.3 GFLOP per 224² image forward and
    /// ~0.9 forward + backward (scaled with the input area); `None` where it does not apply.
    pub gflops_per_sec: Option<f32>,
    /// Device allocator bytes reserved after the measurement (GPU backends; `None` on flex).
    pub device_bytes_reserved: Option<u64>,
}

/// GFLOP of one MobileNetV2 forward pass on a 224×224 image (the convention of the papers).
pub const FORWARD_GFLOP_224: f32 = 0.3;
/// GFLOP of one forward + backward pass on a 224×224 image.
pub const TRAIN_GFLOP_224: f32 = 0.9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub input_size: u32,
    pub iterations: usize,
    pub rows: Vec<BenchRow>,
}

const CLASSES: usize = 5;

/// Times `iterations` batches (after one warm-up batch) of each kind for each batch size.
pub async fn bench(
    pretrained: &WeightMap,
    device: &Device,
    batches: &[usize],
    iterations: usize,
    input_size: u32,
) -> Result<BenchReport, String> {
    let device = device.clone().without_autodiff();
    let autodiff = device.clone().autodiff();
    let spec = HeadSpec { kind: HeadKind::Replace, num_classes: CLASSES, seed: 0 };
    let model = ImageClassifier::from_pretrained(pretrained, &spec, &device).map_err(|e| e.to_string())?;
    let frozen_backbone = model.backbone.valid().folded();
    let mut rows = Vec::new();
    let s = input_size as usize;
    let area = (input_size as f32 / 224.0).powi(2);
    for &batch in batches {
        let labels: Vec<usize> = (0..batch).map(|i| i % CLASSES).collect();
        let row = |what: &str, seconds: f32, gflop_per_image: Option<f32>| {
            let images_per_sec = (batch * iterations) as f32 / seconds;
            BenchRow {
                what: what.to_string(),
                batch,
                images_per_sec,
                ms_per_batch: seconds * 1000.0 / iterations as f32,
                gflops_per_sec: gflop_per_image.map(|g| g * area * images_per_sec),
                device_bytes_reserved: device.memory_pool_usage().map(|u| u.bytes_reserved),
            }
        };

        // Frozen: backbone inference only (what the feature cache costs, once per image).
        let mut elapsed = 0.0;
        for i in 0..=iterations {
            let x = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
            let t0 = Instant::now();
            let features = frozen_backbone.forward(x);
            read_matrix(features.slice([0..1, 0..1])).await?;
            if i > 0 {
                elapsed += t0.elapsed().as_secs_f32();
            }
        }
        rows.push(row("frozen: backbone features", elapsed, Some(FORWARD_GFLOP_224)));

        // Frozen: one head step on cached features (what each later epoch costs).
        let mut head = model.head.clone().fork(&autodiff).train();
        let mut optim = AdamWConfig::new().init();
        let mut elapsed = 0.0;
        for i in 0..=iterations {
            let f = Tensor::<2>::random([batch, FEATURE_DIM], Distribution::Normal(0.0, 1.0), &autodiff);
            let t0 = Instant::now();
            let loss = cross_entropy(head.forward(f), smoothed_targets(&labels, CLASSES, 0.1, &autodiff));
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &head);
            head = optim.step(1e-3, head, g);
            read_matrix(loss.detach().reshape([1, 1])).await?;
            if i > 0 {
                elapsed += t0.elapsed().as_secs_f32();
            }
        }
        rows.push(row("frozen: head step on cache", elapsed, None));

        // Discriminative: full forward + backward + update of every parameter.
        let mut full = ImageClassifier::from_pretrained(pretrained, &spec, &device)
            .map_err(|e| e.to_string())?
            .fork(&autodiff)
            .train();
        let mut optim = AdamWConfig::new().init();
        let mut elapsed = 0.0;
        for i in 0..=iterations {
            let x = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &autodiff);
            let t0 = Instant::now();
            let loss = cross_entropy(full.forward(x), smoothed_targets(&labels, CLASSES, 0.1, &autodiff));
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &full);
            full = optim.step(1e-4, full, g);
            read_matrix(loss.detach().reshape([1, 1])).await?;
            if i > 0 {
                elapsed += t0.elapsed().as_secs_f32();
            }
        }
        rows.push(row("discriminative: full fine-tune step", elapsed, Some(TRAIN_GFLOP_224)));
    }
    Ok(BenchReport { input_size, iterations, rows })
}
