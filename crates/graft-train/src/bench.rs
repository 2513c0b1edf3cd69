//! Throughput benchmark on synthetic input: frozen feature extraction, head-only steps on
//! cached features, and full fine-tune steps (forward + backward + AdamW over every weight).
//! On a GPU each row also counts the kernels a batch launches and, natively, splits one
//! batch's device time by op group.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use graft_model::launches::{is_gpu, LaunchCount, Launches};
use graft_model::{Architecture, Backbone, HeadKind, HeadSpec, ImageClassifier, WeightMap, FEATURE_DIM};
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
    /// Achieved compute rate, counting 2 FLOP per multiply-add of the backbone (MobileNetV2
    /// 0.6 GFLOP, EfficientNet-Lite0 0.77 per 224² image; a training step 3× that) per
    /// 224² image forward and 1.8 forward + backward (scaled with the input area); `None`
    /// where it does not apply.
    pub gflops_per_sec: Option<f32>,
    /// Device allocator bytes reserved after the measurement (GPU backends; `None` on flex).
    pub device_bytes_reserved: Option<u64>,
    /// Kernel launches (dispatches) per batch, averaged over the timed batches (GPU backends).
    #[serde(default)]
    pub dispatches: Option<f32>,
    /// One batch's launches by op group (GPU backends), with each group's device time where
    /// kernels were timed (natively, in one more batch: each kernel is waited for).
    #[serde(default)]
    pub op_groups: Vec<OpGroupRow>,
}

/// One op group of a profiled batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpGroupRow {
    pub group: String,
    pub launches: u64,
    /// Device time of its kernels, each run alone; `None` where kernels cannot be timed.
    pub ms: Option<f32>,
}

/// GFLOP of one forward pass of `arch` on a 224×224 image: 2 FLOP per multiply-add.
pub fn forward_gflop_224(arch: Architecture) -> f32 {
    2.0 * arch.multiply_adds(224) as f32 / 1e9
}

/// GFLOP of one forward + backward pass on a 224×224 image (backward ≈ 2 × forward).
pub fn train_gflop_224(arch: Architecture) -> f32 {
    3.0 * forward_gflop_224(arch)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub input_size: u32,
    pub iterations: usize,
    pub rows: Vec<BenchRow>,
}

/// What to measure beside throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BenchOptions {
    /// Time each kernel of one extra batch per row (natively; wasm cannot wait for a kernel).
    pub time_op_groups: bool,
}

const CLASSES: usize = 5;

/// A benchmark of one kind of batch: `run` does batch `i`, returning once its result is read.
struct Measured {
    seconds: f32,
    dispatches: Option<f32>,
    op_groups: Vec<OpGroupRow>,
}

// Milliseconds of one batch fit an f32.
#[allow(clippy::cast_possible_truncation)]
fn op_rows(launches: Launches, timed: bool) -> Vec<OpGroupRow> {
    let mut rows: Vec<OpGroupRow> = launches
        .groups
        .into_iter()
        .map(|(group, (launches, seconds))| OpGroupRow {
            group: group.to_string(),
            launches,
            ms: timed.then_some((seconds * 1000.0) as f32),
        })
        .collect();
    rows.sort_by(|a, b| b.ms.unwrap_or(0.0).total_cmp(&a.ms.unwrap_or(0.0)).then(b.launches.cmp(&a.launches)));
    rows
}

/// Times `iterations` batches after one warm-up; on a GPU also counts their launches, by op
/// group. Timing each kernel waits for it, so that takes one more batch, outside the timed ones.
async fn measure<F>(device: &Device, iterations: usize, options: BenchOptions, mut run: F) -> Result<Measured, String>
where
    F: AsyncFnMut() -> Result<(), String>,
{
    run().await?;
    let gpu = is_gpu(device);
    let count = gpu.then(|| LaunchCount::start(false));
    let t0 = Instant::now();
    for _ in 0..iterations {
        run().await?;
    }
    let seconds = t0.elapsed().as_secs_f32();
    let launches = count.and_then(LaunchCount::finish);
    let dispatches = launches.as_ref().map(|l| l.total as f32 / iterations as f32);
    let op_groups = match launches {
        Some(_) if options.time_op_groups => {
            let count = LaunchCount::start(true);
            run().await?;
            count.finish().map(|l| op_rows(l, true)).unwrap_or_default()
        }
        Some(l) => op_rows(l.per_batch(iterations), false),
        None => Vec::new(),
    };
    Ok(Measured { seconds, dispatches, op_groups })
}

/// Times `iterations` batches (after one warm-up batch) of each kind for each batch size.
pub async fn bench(
    pretrained: &WeightMap,
    device: &Device,
    batches: &[usize],
    iterations: usize,
    input_size: u32,
    options: BenchOptions,
) -> Result<BenchReport, String> {
    let device = device.clone().without_autodiff();
    let autodiff = device.clone().autodiff();
    let spec = HeadSpec { kind: HeadKind::Replace, num_classes: CLASSES, seed: 0 };
    let model = ImageClassifier::from_pretrained(pretrained, &spec, &device).map_err(|e| e.to_string())?;
    let frozen_backbone: Backbone = model.backbone.valid().folded();
    let mut rows = Vec::new();
    let s = input_size as usize;
    let area = (input_size as f32 / 224.0).powi(2);
    for &batch in batches {
        let labels: Vec<usize> = (0..batch).map(|i| i % CLASSES).collect();
        let row = |what: &str, m: Measured, gflop_per_image: Option<f32>| {
            let images_per_sec = (batch * iterations) as f32 / m.seconds;
            BenchRow {
                what: what.to_string(),
                batch,
                images_per_sec,
                ms_per_batch: m.seconds * 1000.0 / iterations as f32,
                gflops_per_sec: gflop_per_image.map(|g| g * area * images_per_sec),
                device_bytes_reserved: device.memory_pool_usage().map(|u| u.bytes_reserved),
                dispatches: m.dispatches,
                op_groups: m.op_groups,
            }
        };

        // Frozen: backbone inference only (what the feature cache costs, once per image).
        let m = measure(&device, iterations, options, async || {
            let x = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
            let features = frozen_backbone.forward(x);
            read_matrix(features.slice([0..1, 0..1])).await.map(drop)
        })
        .await?;
        rows.push(row("frozen: backbone features", m, Some(forward_gflop_224(model.arch()))));

        // Frozen: one head step on cached features (what each later epoch costs).
        let mut head = model.head.clone().fork(&autodiff).train();
        let mut optim = crate::optim::adamw(1e-4);
        let m = measure(&device, iterations, options, async || {
            let f = Tensor::<2>::random([batch, FEATURE_DIM], Distribution::Normal(0.0, 1.0), &autodiff);
            let loss = cross_entropy(head.forward(f), smoothed_targets(&labels, CLASSES, 0.1, &autodiff));
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &head);
            optim.step_in_place(1e-3, &mut head, g);
            read_matrix(loss.detach().reshape([1, 1])).await.map(drop)
        })
        .await?;
        rows.push(row("frozen: head step on cache", m, None));

        // Discriminative: full forward + backward + update of every parameter.
        let mut full = ImageClassifier::from_pretrained(pretrained, &spec, &device)
            .map_err(|e| e.to_string())?
            .fork(&autodiff)
            .train();
        let mut optim = crate::optim::adamw(1e-4);
        let m = measure(&device, iterations, options, async || {
            let x = Tensor::<4>::random([batch, 3, s, s], Distribution::Normal(0.0, 1.0), &autodiff);
            let loss = cross_entropy(full.forward(x), smoothed_targets(&labels, CLASSES, 0.1, &autodiff));
            let mut grads = loss.backward();
            let g = GradientsParams::from_module(&mut grads, &full);
            optim.step_in_place(1e-4, &mut full, g);
            read_matrix(loss.detach().reshape([1, 1])).await.map(drop)
        })
        .await?;
        rows.push(row("discriminative: full fine-tune step", m, Some(train_gflop_224(model.arch()))));
    }
    Ok(BenchReport { input_size, iterations, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Launches by op group come from the counted batch, with no extra batch unless kernels
    /// are timed; either way they add up to the dispatches per batch. (One timed batch: two
    /// batches may launch a kernel or two more or fewer, and their average is not a count.)
    #[test]
    fn op_groups_are_one_batch_of_the_counted_launches() {
        let _alone = crate::counting_launches_alone();
        let model = ImageClassifier::random(CLASSES, 1, &Device::flex()).expect("a random model");
        let weights = futures::executor::block_on(model.to_weight_map()).expect("read back");
        let gpu = Device::wgpu(Default::default());
        for timed in [false, true] {
            let options = BenchOptions { time_op_groups: timed };
            let report = futures::executor::block_on(bench(&weights, &gpu, &[1], 1, 32, options)).expect("bench");
            assert_eq!(report.rows.len(), 3);
            for r in &report.rows {
                let per_batch = r.dispatches.expect("counted on a GPU");
                let by_group: u64 = r.op_groups.iter().map(|g| g.launches).sum();
                assert!(
                    by_group > 0 && (by_group as f32 - per_batch).abs() <= if timed { 0.05 * per_batch } else { 0.0 },
                    "{} (timed {timed}): {by_group} by group, {per_batch} per batch",
                    r.what
                );
                assert_eq!(r.op_groups.iter().all(|g| g.ms.is_some()), timed, "{}", r.what);
            }
        }
        let flex = futures::executor::block_on(bench(&weights, &Device::flex(), &[1], 1, 32, BenchOptions::default()))
            .expect("bench");
        assert!(flex.rows.iter().all(|r| r.dispatches.is_none() && r.op_groups.is_empty()));
    }
}
