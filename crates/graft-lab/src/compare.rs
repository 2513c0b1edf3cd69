//! Compare: the textbook's lessons as one experiment — the same data, split and seed, trained
//! four ways one after the other.

use graft_model::HeadKind;
use graft_train::{Mode, TrainConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lesson {
    /// Frozen backbone, head replaced: the fast default.
    FrozenReplace,
    /// Frozen backbone, a new layer stacked on the 1000 ImageNet logits: the classic mistake.
    Stacked,
    /// Backbone at lr × 0.1 after a head-only warm-up.
    Discriminative,
    /// Every layer at one learning rate, no warm-up: how pretrained features get wrecked.
    OneRate,
}

impl Lesson {
    pub const ALL: [Lesson; 4] = [Lesson::FrozenReplace, Lesson::Stacked, Lesson::Discriminative, Lesson::OneRate];

    pub fn label(self) -> &'static str {
        match self {
            Lesson::FrozenReplace => "frozen, head replaced",
            Lesson::Stacked => "stacked on the old head",
            Lesson::Discriminative => "discriminative (backbone lr × 0.1, warm-up)",
            Lesson::OneRate => "everything at one rate, no warm-up",
        }
    }

    /// What the row teaches, in a sentence or two.
    pub fn lesson(self) -> &'static str {
        match self {
            Lesson::FrozenReplace => {
                "The pretrained features stay as ImageNet made them; a fresh head learns to read them. Fast, and usually most of the accuracy."
            }
            Lesson::Stacked => {
                "Everything must squeeze through the 1000 ImageNet scores first: what your classes share that ImageNet never named is lost. Compare with the row above."
            }
            Lesson::Discriminative => {
                "The backbone adapts too, slowly (a tenth of the head's rate), after the head has warmed up, so early large gradients cannot wreck what it knows."
            }
            Lesson::OneRate => {
                "The random head's first large gradients flow into the backbone at full strength: pretrained features are damaged before the head has learned anything. See how much of ImageNet it still knows."
            }
        }
    }

    /// The run's settings and head, from the user's settings (epochs, rate, batch, split, seed).
    pub fn config(self, base: &TrainConfig) -> (TrainConfig, HeadKind) {
        let mut cfg = base.clone();
        let head = match self {
            Lesson::FrozenReplace => {
                cfg.mode = Mode::Frozen;
                HeadKind::Replace
            }
            Lesson::Stacked => {
                cfg.mode = Mode::Frozen;
                HeadKind::Stacked
            }
            Lesson::Discriminative => {
                cfg.mode = Mode::Discriminative;
                cfg.backbone_ratio = 0.1;
                cfg.warmup_epochs = 1.min(cfg.epochs.saturating_sub(1));
                HeadKind::Replace
            }
            Lesson::OneRate => {
                cfg.mode = Mode::Discriminative;
                cfg.backbone_ratio = 1.0;
                cfg.layer_groups = false;
                cfg.warmup_epochs = 0;
                HeadKind::Replace
            }
        };
        (cfg, head)
    }
}

/// One row of the Compare table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    pub lesson: Lesson,
    pub label: String,
    /// What the row is meant to show (the textbook's expectation).
    pub teaches: String,
    /// What it did show here, from the numbers (see `verdict`).
    pub verdict: String,
    pub val_accuracy: Option<f32>,
    pub val_loss: Option<f32>,
    /// Validation pictures behind the accuracy (how small a difference means anything).
    pub val_count: Option<usize>,
    /// Validation accuracy after each epoch (the overlaid curves).
    pub val_curve: Vec<f32>,
    pub seconds: f32,
    pub images_per_sec: f32,
    /// Share of the user's pictures whose ImageNet top-1 is unchanged (what the backbone still
    /// knows): 1.0 for a frozen backbone.
    pub imagenet_agreement: Option<f32>,
    /// Relative weight change of each backbone layer (19 values).
    pub layer_change: Vec<f32>,
    /// How the run ended, in words.
    pub outcome: String,
}
