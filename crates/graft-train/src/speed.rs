//! How fast a device runs each mode's work, for choosing the engine per mode: backbone features
//! of a batch (what frozen training costs per image) and one full discriminative training step
//! (forward, backward, every layer's update). Short by design — it runs when a browser first
//! starts the app — and cut short for a device already far behind a faster one.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use graft_model::{Backbone, WeightSource};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::batch::read_floats;
use crate::probe::{synthetic_pixels, StepModel};

/// Input side of the timed batches: the size the app trains at.
pub const SPEED_INPUT: u32 = 224;
/// Images in a timed discriminative step (after a warm-up and a batch of one).
pub const SPEED_BATCH: usize = 4;
/// Images in a timed frozen batch: the trainer extracts features 16 at a time, and with small
/// batches the CPU's threads are mostly waiting for each other (measured in the page: one
/// thread beat two at batch 4, two beat one at 16).
pub const SPEED_FROZEN_BATCH: usize = 16;
/// A device whose batch of one is this many times slower than the best so far is not timed
/// further (its figure is then the batch of one, marked as cut short).
pub const CUT_BEHIND: f32 = 8.0;

/// One mode's figure on one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeSpeed {
    /// Images per second; `None` when not measured.
    pub images_per_sec: Option<f32>,
    /// The batch the figure comes from.
    pub batch: usize,
    /// Why the measurement stopped early, in words.
    pub cut_short: Option<String>,
}

/// Both modes' figures on one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeedReading {
    pub frozen: ModeSpeed,
    pub discriminative: ModeSpeed,
    /// What measuring cost, warm-ups and model set-up included.
    pub seconds: f32,
}

/// A workload timed per batch of `n` images.
trait Work {
    async fn run(&mut self, n: usize) -> Result<f32, String>;
}

struct Features {
    backbone: Backbone,
    device: Device,
}

impl Work for Features {
    async fn run(&mut self, n: usize) -> Result<f32, String> {
        let s = SPEED_INPUT as usize;
        let pixels = synthetic_pixels(n * 3 * s * s, n as u64);
        let t0 = Instant::now();
        let x = Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), &self.device);
        read_floats(self.backbone.forward(x)).await?;
        Ok(t0.elapsed().as_secs_f32())
    }
}

struct Step(StepModel);

impl Work for Step {
    async fn run(&mut self, n: usize) -> Result<f32, String> {
        let s = SPEED_INPUT as usize;
        let pixels = synthetic_pixels(n * 3 * s * s, n as u64);
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let t0 = Instant::now();
        let (logits, loss) = self.0.forward(pixels, SPEED_INPUT, &labels, n as u64);
        let mut grads = loss.backward();
        self.0.update(&mut grads);
        read_floats(logits.detach()).await?;
        Ok(t0.elapsed().as_secs_f32())
    }
}

/// Warm-up, a batch of one, then (unless already [`CUT_BEHIND`] `best`) a batch of `size` —
/// again if it came out slower per image than the batch of one (its first run paid for
/// something once: new kernels, allocations).
async fn time_mode(work: &mut impl Work, size: usize, best: Option<f32>) -> Result<ModeSpeed, String> {
    work.run(1).await?;
    let one = 1.0 / work.run(1).await?.max(1e-6);
    if let Some(best) = best.filter(|&b| b > CUT_BEHIND * one) {
        return Ok(ModeSpeed {
            images_per_sec: Some(one),
            batch: 1,
            cut_short: Some(format!("cut short: {:.0}× slower than the fastest at batch 1", best / one)),
        });
    }
    let batch = size as f32;
    let mut speed = batch / work.run(size).await?.max(1e-6);
    if speed < one {
        speed = speed.max(batch / work.run(size).await?.max(1e-6));
    }
    Ok(ModeSpeed { images_per_sec: Some(speed), batch: size, cut_short: None })
}

/// Times both modes on `device`. `best_frozen` / `best_discriminative`: the fastest figures of
/// devices measured before, to cut this one short when it is far behind; a device cut short in
/// frozen mode is not timed in discriminative mode.
pub async fn measure_speed(
    pretrained: &impl WeightSource,
    device: &Device,
    best_frozen: Option<f32>,
    best_discriminative: Option<f32>,
) -> Result<SpeedReading, String> {
    let t0 = Instant::now();
    let device = device.clone().without_autodiff();
    let backbone =
        Backbone::load(pretrained.architecture(), pretrained, &device).map_err(|e| e.to_string())?.valid().folded();
    let frozen = time_mode(&mut Features { backbone, device: device.clone() }, SPEED_FROZEN_BATCH, best_frozen).await?;
    let discriminative = match (&frozen.cut_short, frozen.images_per_sec, best_frozen) {
        (Some(_), Some(speed), Some(best)) => ModeSpeed {
            images_per_sec: None,
            batch: 0,
            cut_short: Some(format!("not measured: {:.0}× slower than the fastest in frozen mode", best / speed)),
        },
        _ => {
            let model = StepModel::new(pretrained, 2, 0, &device)?;
            time_mode(&mut Step(model), SPEED_BATCH, best_discriminative).await?
        }
    };
    Ok(SpeedReading { frozen, discriminative, seconds: t0.elapsed().as_secs_f32() })
}
