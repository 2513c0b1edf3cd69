//! Your own starting checkpoint: a MobileNetV2 trained before (a graft export, or any
//! torchvision-named `state_dict`) whose backbone a run starts from instead of ImageNet's.
//!
//! A checkpoint comes from a stranger's disk, so it is checked tensor by tensor before anything
//! is built from it: every missing tensor, wrong shape or non-finite value is named, the head's
//! fate is said in a sentence, and nothing panics.

use crate::head::HeadKind;
use crate::mobilenet::{mobilenet_v2_plan, FEATURE_DIM, IMAGENET_CLASSES};
use crate::weights::WeightMap;

/// Problems named one by one before the rest are counted.
const NAMED: usize = 6;
/// The prefix `torch.nn.DataParallel` (and DDP) puts before every name of a saved model.
const WRAPPED: &str = "module.";

/// The tensors MobileNetV2's backbone needs, torchvision names and shapes, in network order.
pub fn backbone_shapes() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for block in mobilenet_v2_plan() {
        for layer in block.layers {
            let s = layer.spec;
            out.push((format!("{}.weight", layer.names.conv), vec![s.c_out, s.c_in / s.groups, s.kernel, s.kernel]));
            for stat in ["weight", "bias", "running_mean", "running_var"] {
                out.push((format!("{}.{stat}", layer.names.bn), vec![s.c_out]));
            }
        }
    }
    out
}

/// Why a checkpoint cannot start a run: a summary and every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{summary}: {}", problems.join("; "))]
pub struct CheckpointError {
    pub summary: String,
    pub problems: Vec<String>,
}

/// A checkpoint that passed the checks.
#[derive(Debug, Clone)]
pub struct StartingCheckpoint {
    /// The backbone's tensors, plus `classifier.1.*` when the head being built uses ImageNet's
    /// classifier (the stacked and kept-ImageNet heads): what the model is built from.
    pub weights: WeightMap,
    /// What was found and what happens to it, one sentence each.
    pub notes: Vec<String>,
}

impl StartingCheckpoint {
    /// Checks `checkpoint` for a run of `num_classes` classes with a head of `kind`.
    pub fn check(checkpoint: &WeightMap, num_classes: usize, kind: &HeadKind) -> Result<Self, CheckpointError> {
        let mut notes = Vec::new();
        let unwrapped;
        let checkpoint = if !checkpoint.names().any(|n| n.starts_with("features."))
            && checkpoint.names().any(|n| n.starts_with("module.features."))
        {
            unwrapped = checkpoint.renamed(|n| n.strip_prefix(WRAPPED).map(str::to_string));
            notes.push("saved from a wrapped model (`module.` before every name): read without it".into());
            &unwrapped
        } else {
            checkpoint
        };

        let mut weights = backbone(checkpoint)?;
        notes.push(format!("the backbone: all {} MobileNetV2 tensors, shapes checked", weights.len()));
        head(checkpoint, num_classes, kind, &mut weights, &mut notes)?;
        let others: Vec<&str> =
            checkpoint.names().filter(|n| !n.starts_with("features.") && !n.starts_with("classifier.")).collect();
        if !others.is_empty() {
            notes.push(format!(
                "{} other tensor(s) are not MobileNetV2's and are left out: {}",
                others.len(),
                listed(&others)
            ));
        }
        Ok(Self { weights, notes })
    }
}

/// Every backbone tensor, checked: present, the right shape, finite.
fn backbone(checkpoint: &WeightMap) -> Result<WeightMap, CheckpointError> {
    if !checkpoint.names().any(|n| n.starts_with("features.")) {
        let mut names: Vec<&str> = checkpoint.names().collect();
        names.sort_unstable();
        let found =
            if names.is_empty() { "it holds no tensors".to_string() } else { format!("it holds {}", listed(&names)) };
        return Err(CheckpointError {
            summary: "not a MobileNetV2 checkpoint".into(),
            problems: vec![format!("no `features.*` tensors (MobileNetV2's backbone, torchvision names); {found}")],
        });
    }
    let mut weights = WeightMap::default();
    let mut problems = Vec::new();
    for (name, shape) in backbone_shapes() {
        match checkpoint.get(&name) {
            None => problems.push(format!("`{name}` is missing")),
            Some((found, _)) if found != shape.as_slice() => {
                problems.push(format!("`{name}` is {found:?}, MobileNetV2 has {shape:?}"));
            }
            Some((_, values)) if values.iter().any(|v| !v.is_finite()) => {
                problems.push(format!("`{name}` holds NaN or infinite values"));
            }
            Some((_, values)) => weights.insert(name, shape, values.to_vec()),
        }
    }
    if problems.is_empty() {
        Ok(weights)
    } else {
        Err(CheckpointError {
            summary: "this checkpoint's backbone does not fit MobileNetV2".into(),
            problems: named(problems),
        })
    }
}

/// What happens to the checkpoint's classifier: the head is replaced, unless the head being
/// built needs ImageNet's classifier and the checkpoint has one (then it is taken along).
fn head(
    checkpoint: &WeightMap,
    num_classes: usize,
    kind: &HeadKind,
    weights: &mut WeightMap,
    notes: &mut Vec<String>,
) -> Result<(), CheckpointError> {
    let weight = checkpoint.get("classifier.1.weight");
    let bias = checkpoint.get("classifier.1.bias");
    let imagenet = [IMAGENET_CLASSES, FEATURE_DIM];
    let is_imagenet = matches!((weight, bias), (Some((w, wv)), Some((b, bv)))
        if w == imagenet.as_slice() && b == [IMAGENET_CLASSES].as_slice()
            && wv.iter().chain(bv.iter()).all(|v| v.is_finite()));
    let found = match weight {
        Some((shape, _)) => format!("`classifier.1.weight` is {shape:?}"),
        None => "there is no classifier (`classifier.1`)".to_string(),
    };
    match kind {
        HeadKind::Replace => {
            let classes = if num_classes == 1 { "1 class".to_string() } else { format!("{num_classes} classes") };
            let why = match weight {
                Some((shape, _)) if shape.first() == Some(&num_classes) => {
                    " too, but a checkpoint does not say which class each row is".to_string()
                }
                _ => String::new(),
            };
            notes.push(format!("{found}, this project has {classes}{why} — the head will be replaced"));
        }
        HeadKind::Stacked | HeadKind::KeepImagenet { .. } => {
            if !is_imagenet {
                return Err(CheckpointError {
                    summary: "this head needs ImageNet's classifier".into(),
                    problems: vec![format!(
                        "{found}, not ImageNet's {imagenet:?}: choose the replaced head to start from this checkpoint"
                    )],
                });
            }
            for name in ["classifier.1.weight", "classifier.1.bias"] {
                if let Some((shape, values)) = checkpoint.get(name) {
                    weights.insert(name, shape.to_vec(), values.to_vec());
                }
            }
            notes.push(format!("{found}: ImageNet's classifier, which this head builds on"));
        }
    }
    if checkpoint.names().any(|n| n.starts_with("classifier.") && !n.starts_with("classifier.1.")) {
        notes.push("a second classifier layer (a stacked head, `classifier.2`) is left out".into());
    }
    Ok(())
}

/// `a`, `b`, `c` and 3 more.
fn listed(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
    match names.len().saturating_sub(3) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The first problems, then how many more.
fn named(mut problems: Vec<String>) -> Vec<String> {
    if problems.len() > NAMED {
        let more = problems.len() - NAMED;
        problems.truncate(NAMED);
        problems.push(format!("{more} more"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;
    use crate::{ImageClassifier, WeightSource};

    /// A whole torchvision-named model (random weights) as a checkpoint, with `classes` logits.
    fn saved_model(classes: usize) -> WeightMap {
        let model = ImageClassifier::random(classes, 3, &Device::flex()).expect("a random model");
        futures::executor::block_on(model.to_weight_map()).expect("read back")
    }

    #[test]
    fn a_fitting_checkpoint_builds_the_model_with_a_new_head() {
        let saved = saved_model(10);
        let start = StartingCheckpoint::check(&saved, 4, &HeadKind::Replace).expect("fits");
        assert_eq!(start.weights.len(), backbone_shapes().len(), "backbone only: the head is replaced");
        assert!(
            start
                .notes
                .iter()
                .any(|n| n
                    == "`classifier.1.weight` is [10, 1280], this project has 4 classes — the head will be replaced"),
            "{:?}",
            start.notes
        );
        // The built model's backbone is the checkpoint's.
        let name = "features.5.conv.1.0.weight";
        let want = saved.values_for(name, saved.shape(name).unwrap()).unwrap().to_vec();
        let model = ImageClassifier::from_pretrained(
            &start.weights,
            &crate::HeadSpec { kind: HeadKind::Replace, num_classes: 4, seed: 1 },
            &Device::flex(),
        )
        .expect("built");
        let got = futures::executor::block_on(model.to_weight_map()).unwrap();
        assert_eq!(got.values(name, saved.shape(name).unwrap()).unwrap(), want.as_slice());
        assert_eq!(got.shape("classifier.1.weight"), Some([4, FEATURE_DIM].as_slice()));
    }

    #[test]
    fn every_missing_or_misshapen_tensor_is_named() {
        let saved = saved_model(4);
        let mut broken = saved.renamed(|n| (n != "features.3.conv.0.0.weight").then(|| n.to_string()));
        broken.insert("features.0.0.weight", vec![16, 3, 3, 3], vec![0.0; 16 * 27]);
        let mut values = saved.get("features.7.conv.1.1.running_var").unwrap().1.to_vec();
        values[2] = f32::NAN;
        broken.insert("features.7.conv.1.1.running_var", vec![values.len()], values);
        let err = StartingCheckpoint::check(&broken, 4, &HeadKind::Replace).unwrap_err();
        assert_eq!(err.summary, "this checkpoint's backbone does not fit MobileNetV2");
        assert_eq!(
            err.problems,
            vec![
                "`features.0.0.weight` is [16, 3, 3, 3], MobileNetV2 has [32, 3, 3, 3]".to_string(),
                "`features.3.conv.0.0.weight` is missing".to_string(),
                "`features.7.conv.1.1.running_var` holds NaN or infinite values".to_string(),
            ]
        );
    }

    #[test]
    fn another_network_is_refused_by_name() {
        let mut other = WeightMap::default();
        other.insert("_conv_stem.weight", vec![32, 3, 3, 3], vec![0.0; 864]);
        other.insert("_bn0.weight", vec![32], vec![1.0; 32]);
        let err = StartingCheckpoint::check(&other, 2, &HeadKind::Replace).unwrap_err();
        assert_eq!(err.summary, "not a MobileNetV2 checkpoint");
        assert!(err.problems[0].contains("`_bn0.weight`, `_conv_stem.weight`"), "{err}");
        let empty = StartingCheckpoint::check(&WeightMap::default(), 2, &HeadKind::Replace).unwrap_err();
        assert!(empty.to_string().contains("it holds no tensors"), "{empty}");
    }

    #[test]
    fn the_stacked_head_needs_imagenets_classifier() {
        let err = StartingCheckpoint::check(&saved_model(10), 4, &HeadKind::Stacked).unwrap_err();
        assert!(err.to_string().contains("`classifier.1.weight` is [10, 1280], not ImageNet's [1000, 1280]"), "{err}");
        let imagenet = saved_model(IMAGENET_CLASSES);
        let start = StartingCheckpoint::check(&imagenet, 4, &HeadKind::Stacked).expect("ImageNet's classifier");
        assert!(start.weights.contains("classifier.1.weight"));
    }

    #[test]
    fn a_wrapped_model_is_read_without_its_prefix() {
        let wrapped = saved_model(3).renamed(|n| Some(format!("module.{n}")));
        let start = StartingCheckpoint::check(&wrapped, 3, &HeadKind::Replace).expect("fits once unwrapped");
        assert!(start.notes[0].contains("`module.`"));
        assert!(
            start.notes.iter().any(|n| n.contains("3 classes too, but a checkpoint does not say")),
            "{:?}",
            start.notes
        );
    }
}
