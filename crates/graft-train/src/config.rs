//! Training settings, with defaults that suit a few dozen images per class.

use graft_data::{Augment, Preprocess};
use graft_model::Architecture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Backbone fixed (BatchNorm in inference mode); only the head learns, on cached features.
    Frozen,
    /// Backbone and head both learn; the backbone at `lr × backbone_ratio`, after a head-only
    /// warm-up.
    Discriminative,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Frozen => "frozen",
            Mode::Discriminative => "discriminative",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "frozen" => Ok(Mode::Frozen),
            "discriminative" => Ok(Mode::Discriminative),
            other => Err(format!("unknown mode `{other}` (frozen | discriminative)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub mode: Mode,
    pub epochs: usize,
    /// Peak learning rate of the head.
    pub lr: f64,
    /// Backbone learning rate = `lr × backbone_ratio` (discriminative mode).
    pub backbone_ratio: f64,
    /// Early backbone layers learn slower than late ones: `features.0` gets a tenth of the
    /// backbone rate, growing geometrically to the full rate at `features.18`.
    pub layer_groups: bool,
    /// Head-only epochs before the backbone unfreezes (discriminative mode).
    pub warmup_epochs: usize,
    pub batch_size: usize,
    pub weight_decay: f32,
    pub label_smoothing: f32,
    pub val_fraction: f32,
    pub augment: Option<Augment>,
    /// Augmented views cached per training image in frozen mode (epochs cycle through them).
    pub frozen_views: usize,
    pub input_size: u32,
    pub seed: u64,
    /// The pretrained network (settings saved before there was a choice are MobileNetV2's).
    #[serde(default)]
    pub backbone: Architecture,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Frozen,
            epochs: 10,
            lr: 1e-3,
            backbone_ratio: 0.1,
            layer_groups: false,
            warmup_epochs: 1,
            batch_size: 16,
            weight_decay: 1e-2,
            label_smoothing: 0.1,
            val_fraction: 0.2,
            augment: Some(Augment::default()),
            frozen_views: 3,
            input_size: 224,
            seed: 42,
            backbone: Architecture::MobileNetV2,
        }
    }
}

impl TrainConfig {
    /// How images are prepared and normalised for this run's input size and backbone: the one
    /// place the trainer, prediction and the exported manifest take it from.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess { norm: self.backbone.normalization(), ..Preprocess::imagenet(self.input_size) }
    }

    /// Head learning rate multiplier for backbone layer `index` of `count` (discriminative).
    pub fn backbone_layer_factor(&self, index: usize, count: usize) -> f64 {
        if !self.layer_groups || count < 2 {
            return self.backbone_ratio;
        }
        let depth = index as f64 / (count - 1) as f64;
        self.backbone_ratio * 10f64.powf(depth - 1.0)
    }

    /// [`Self::backbone_layer_factor`] for each of `count` backbone layers: the trainer, the
    /// GPU's start-up check and the LR finder all step with these.
    pub fn backbone_factors(&self, count: usize) -> Vec<f64> {
        (0..count).map(|i| self.backbone_layer_factor(i, count)).collect()
    }

    /// Number of distinct cached feature sets in frozen mode.
    pub fn cached_views(&self) -> usize {
        match self.augment {
            Some(_) => self.frozen_views.clamp(1, self.epochs.max(1)),
            None => 1,
        }
    }
}
