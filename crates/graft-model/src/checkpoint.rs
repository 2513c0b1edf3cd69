//! Your own starting checkpoint: a network trained before (a graft export, or any `state_dict`
//! under the backbone's PyTorch names: torchvision's for MobileNetV2, efficientnet_pytorch's for
//! EfficientNet-Lite0) whose backbone a run starts from instead of ImageNet's.
//!
//! A checkpoint comes from a stranger's disk, so it is checked tensor by tensor before anything
//! is built from it: every missing tensor, wrong shape or non-finite value is named, the head's
//! fate is said in a sentence, and nothing panics.

use crate::arch::Architecture;
use crate::head::HeadKind;
use crate::mobilenet::{FEATURE_DIM, IMAGENET_CLASSES};
use crate::weights::WeightMap;

/// Problems named one by one before the rest are counted.
const NAMED: usize = 6;
/// The prefix `torch.nn.DataParallel` (and DDP) puts before every name of a saved model.
const WRAPPED: &str = "module.";

/// A tensor's name without the `module.` a wrapped model (DataParallel, DDP) saves before it.
pub fn unwrapped_name(name: &str) -> &str {
    name.strip_prefix(WRAPPED).unwrap_or(name)
}

/// The tensors `arch`'s backbone needs, names and shapes, in network order.
pub fn backbone_shapes(arch: Architecture) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for block in arch.plan() {
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
    /// The backbone's tensors, plus the ImageNet classifier's (`classifier.1.*` / `_fc.*`) when
    /// the head being built uses it (the stacked and kept-ImageNet heads): what the model is
    /// built from.
    pub weights: WeightMap,
    /// What was found and what happens to it, one sentence each.
    pub notes: Vec<String>,
}

impl StartingCheckpoint {
    /// Checks `checkpoint` for a run on `arch` of `num_classes` classes with a head of `kind`.
    pub fn check(
        checkpoint: &WeightMap,
        arch: Architecture,
        num_classes: usize,
        kind: &HeadKind,
    ) -> Result<Self, CheckpointError> {
        let mut notes = Vec::new();
        let unwrapped;
        let checkpoint = if !checkpoint.names().any(|n| arch.is_backbone_tensor(n))
            && checkpoint.names().any(|n| n.strip_prefix(WRAPPED).is_some_and(|n| arch.is_backbone_tensor(n)))
        {
            unwrapped = checkpoint.renamed(|n| n.strip_prefix(WRAPPED).map(str::to_string));
            notes.push("saved from a wrapped model (`module.` before every name): read without it".into());
            &unwrapped
        } else {
            checkpoint
        };

        let mut weights = backbone(checkpoint, arch)?;
        notes.push(format!("the backbone: all {} {} tensors, shapes checked", weights.len(), arch.title()));
        head(checkpoint, arch, num_classes, kind, &mut weights, &mut notes)?;
        let (imagenet, stacked) = (format!("{}.", arch.head_layer(0)), format!("{}.", arch.head_layer(1)));
        let others: Vec<&str> = checkpoint
            .names()
            .filter(|n| !arch.is_backbone_tensor(n) && !n.starts_with(&imagenet) && !n.starts_with(&stacked))
            .collect();
        if !others.is_empty() {
            notes.push(format!(
                "{} other tensor(s) are not {}'s and are left out: {}",
                others.len(),
                arch.title(),
                listed(&others)
            ));
        }
        Ok(Self { weights, notes })
    }
}

/// Every backbone tensor, checked: present, the right shape, finite.
fn backbone(checkpoint: &WeightMap, arch: Architecture) -> Result<WeightMap, CheckpointError> {
    if !checkpoint.names().any(|n| arch.is_backbone_tensor(n)) {
        let mut names: Vec<&str> = checkpoint.names().collect();
        names.sort_unstable();
        let found = match Architecture::detect(names.iter().copied()) {
            Some(other) => format!(
                "it is {}'s: choose {} as the pretrained network to start from it",
                other.title(),
                other.title()
            ),
            None if names.is_empty() => "it holds no tensors".to_string(),
            None => format!("it holds {}", listed(&names)),
        };
        let stem = &arch.plan()[0].layers[0].names.conv;
        return Err(CheckpointError {
            summary: format!("not a {} checkpoint", arch.title()),
            problems: vec![format!("no `{stem}.weight` or other tensors of {}'s backbone; {found}", arch.title())],
        });
    }
    let mut weights = WeightMap::default();
    let mut problems = Vec::new();
    for (name, shape) in backbone_shapes(arch) {
        match checkpoint.get(&name) {
            None => problems.push(format!("`{name}` is missing")),
            Some((found, _)) if found != shape.as_slice() => {
                problems.push(format!("`{name}` is {found:?}, {} has {shape:?}", arch.title()));
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
            summary: format!("this checkpoint's backbone does not fit {}", arch.title()),
            problems: named(problems),
        })
    }
}

/// What happens to the checkpoint's classifier: the head is replaced, unless the head being
/// built needs ImageNet's classifier and the checkpoint has one (then it is taken along).
fn head(
    checkpoint: &WeightMap,
    arch: Architecture,
    num_classes: usize,
    kind: &HeadKind,
    weights: &mut WeightMap,
    notes: &mut Vec<String>,
) -> Result<(), CheckpointError> {
    let layer = arch.head_layer(0);
    let (weight_name, bias_name) = (format!("{layer}.weight"), format!("{layer}.bias"));
    let weight = checkpoint.get(&weight_name);
    let bias = checkpoint.get(&bias_name);
    let imagenet = [IMAGENET_CLASSES, FEATURE_DIM];
    let is_imagenet = matches!((weight, bias), (Some((w, wv)), Some((b, bv)))
        if w == imagenet.as_slice() && b == [IMAGENET_CLASSES].as_slice()
            && wv.iter().chain(bv.iter()).all(|v| v.is_finite()));
    let found = match weight {
        Some((shape, _)) => format!("`{weight_name}` is {shape:?}"),
        None => format!("there is no classifier (`{layer}`)"),
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
            for name in [&weight_name, &bias_name] {
                if let Some((shape, values)) = checkpoint.get(name) {
                    weights.insert(name.as_str(), shape.to_vec(), values.to_vec());
                }
            }
            notes.push(format!("{found}: ImageNet's classifier, which this head builds on"));
        }
    }
    let stacked = arch.head_layer(1);
    if checkpoint.names().any(|n| n.starts_with(&format!("{stacked}."))) {
        notes.push(format!("a second classifier layer (a stacked head, `{stacked}`) is left out"));
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
    use crate::{ImageClassifier, RandomWeights, WeightSource};

    const MOBILENET: Architecture = Architecture::MobileNetV2;

    /// A whole torchvision-named model (random weights) as a checkpoint, with `classes` logits.
    fn saved_model(classes: usize) -> WeightMap {
        let model = ImageClassifier::random(classes, 3, &Device::flex()).expect("a random model");
        futures::executor::block_on(model.to_weight_map()).expect("read back")
    }

    #[test]
    fn a_fitting_checkpoint_builds_the_model_with_a_new_head() {
        let saved = saved_model(10);
        let start = StartingCheckpoint::check(&saved, MOBILENET, 4, &HeadKind::Replace).expect("fits");
        assert_eq!(start.weights.len(), backbone_shapes(MOBILENET).len(), "backbone only: the head is replaced");
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
        let err = StartingCheckpoint::check(&broken, MOBILENET, 4, &HeadKind::Replace).unwrap_err();
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
        other.insert("conv1.weight", vec![64, 3, 7, 7], vec![0.0; 64 * 147]);
        other.insert("bn1.weight", vec![64], vec![1.0; 64]);
        let err = StartingCheckpoint::check(&other, MOBILENET, 2, &HeadKind::Replace).unwrap_err();
        assert_eq!(err.summary, "not a MobileNetV2 checkpoint");
        assert!(err.problems[0].contains("no `features.0.0.weight`"), "{err}");
        assert!(err.problems[0].contains("`bn1.weight`, `conv1.weight`"), "{err}");
        let empty = StartingCheckpoint::check(&WeightMap::default(), MOBILENET, 2, &HeadKind::Replace).unwrap_err();
        assert!(empty.to_string().contains("it holds no tensors"), "{empty}");
    }

    #[test]
    fn the_stacked_head_needs_imagenets_classifier() {
        let err = StartingCheckpoint::check(&saved_model(10), MOBILENET, 4, &HeadKind::Stacked).unwrap_err();
        assert!(err.to_string().contains("`classifier.1.weight` is [10, 1280], not ImageNet's [1000, 1280]"), "{err}");
        let imagenet = saved_model(IMAGENET_CLASSES);
        let start =
            StartingCheckpoint::check(&imagenet, MOBILENET, 4, &HeadKind::Stacked).expect("ImageNet's classifier");
        assert!(start.weights.contains("classifier.1.weight"));
    }

    #[test]
    fn a_wrapped_model_is_read_without_its_prefix() {
        let wrapped = saved_model(3).renamed(|n| Some(format!("module.{n}")));
        let start = StartingCheckpoint::check(&wrapped, MOBILENET, 3, &HeadKind::Replace).expect("fits once unwrapped");
        assert!(start.notes[0].contains("`module.`"));
        assert!(
            start.notes.iter().any(|n| n.contains("3 classes too, but a checkpoint does not say")),
            "{:?}",
            start.notes
        );
    }

    /// An EfficientNet-Lite0 model (random weights) as a checkpoint, with `classes` logits.
    fn saved_lite0(classes: usize) -> WeightMap {
        let spec = crate::HeadSpec { kind: HeadKind::Replace, num_classes: classes, seed: 3 };
        let weights = RandomWeights::for_arch(Architecture::EfficientNetLite0, 5);
        let model = ImageClassifier::from_pretrained(&weights, &spec, &Device::flex()).expect("a random model");
        futures::executor::block_on(model.to_weight_map()).expect("read back")
    }

    #[test]
    fn an_efficientnet_lite0_checkpoint_starts_a_lite0_run_and_is_named_for_mobilenet() {
        let lite0 = Architecture::EfficientNetLite0;
        let saved = saved_lite0(10);
        let start = StartingCheckpoint::check(&saved, lite0, 4, &HeadKind::Replace).expect("fits");
        assert_eq!(start.weights.len(), backbone_shapes(lite0).len(), "backbone only: the head is replaced");
        assert!(
            start.notes.contains(
                &"`_fc.weight` is [10, 1280], this project has 4 classes — the head will be replaced".to_string()
            ),
            "{:?}",
            start.notes
        );
        assert!(start.notes.iter().any(|n| n.contains("EfficientNet-Lite0 tensors")), "{:?}", start.notes);
        // A MobileNetV2 run is told which network the file is.
        let err = StartingCheckpoint::check(&saved, MOBILENET, 4, &HeadKind::Replace).unwrap_err();
        assert_eq!(err.summary, "not a MobileNetV2 checkpoint");
        assert!(err.problems[0].contains("it is EfficientNet-Lite0's: choose EfficientNet-Lite0"), "{err}");
        // And the other way round; a misshapen Lite0 tensor is named with Lite0's shape.
        let err = StartingCheckpoint::check(&saved_model(3), lite0, 4, &HeadKind::Replace).unwrap_err();
        assert!(err.problems[0].contains("it is MobileNetV2's"), "{err}");
        let mut broken = saved.clone();
        broken.insert("_blocks.3._depthwise_conv.weight", vec![144, 1, 3, 3], vec![0.0; 144 * 9]);
        let err = StartingCheckpoint::check(&broken, lite0, 4, &HeadKind::Replace).unwrap_err();
        assert_eq!(
            err.problems,
            vec!["`_blocks.3._depthwise_conv.weight` is [144, 1, 3, 3], EfficientNet-Lite0 has [144, 1, 5, 5]"
                .to_string()]
        );
        let wrapped = saved.renamed(|n| Some(format!("module.{n}")));
        assert!(StartingCheckpoint::check(&wrapped, lite0, 4, &HeadKind::Replace).is_ok());
    }
}
