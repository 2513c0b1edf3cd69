//! How far fine-tuning moved each of the backbone's layer groups, and what the backbone still
//! knows of ImageNet.

use graft_model::{HeadSpec, ImageClassifier, WeightMap, WeightSource};

/// Relative weight change ‖after − before‖ / ‖before‖ of each layer group of the backbone (stem,
/// each block, last conv: 19 for MobileNetV2, 18 for EfficientNet-Lite0), over convolution
/// weights and BatchNorm γ/β (running statistics never train here).
pub fn layer_changes(before: &WeightMap, after: &WeightMap) -> Vec<f32> {
    let plan = before.architecture().plan();
    plan.iter()
        .map(|block| {
            let (mut diff, mut norm) = (0f64, 0f64);
            for layer in &block.layers {
                let names = [
                    format!("{}.weight", layer.names.conv),
                    format!("{}.weight", layer.names.bn),
                    format!("{}.bias", layer.names.bn),
                ];
                for name in &names {
                    let Some(shape) = before.shape(name) else { continue };
                    let (Ok(a), Ok(b)) = (before.values(name, shape), after.values(name, shape)) else { continue };
                    for (x, y) in a.iter().zip(b) {
                        diff += f64::from(x - y).powi(2);
                        norm += f64::from(*x).powi(2);
                    }
                }
            }
            #[allow(clippy::cast_possible_truncation)] // a ratio, shown with a few digits
            let change = (diff / norm.max(1e-30)).sqrt() as f32;
            change
        })
        .collect()
}

/// The fine-tuned backbone under the original ImageNet head: what it "still knows". Built from
/// the trained model's backbone and the pretrained ImageNet classifier (`classifier.1` / `_fc`).
pub fn with_imagenet_head(
    trained: &WeightMap,
    pretrained: &WeightMap,
    device: &burn::tensor::Device,
) -> Result<ImageClassifier, String> {
    let mut merged = trained.clone();
    let layer = pretrained.architecture().head_layer(0);
    for name in [format!("{layer}.weight"), format!("{layer}.bias")] {
        let shape = pretrained.shape(&name).ok_or("the pretrained weights have no ImageNet head")?.to_vec();
        let values = pretrained.values(&name, &shape).map_err(|e| e.to_string())?.to_vec();
        merged.insert(&name, shape, values);
    }
    let spec = HeadSpec::imagenet();
    ImageClassifier::from_pretrained(&merged, &spec, device).map_err(|e| e.to_string())
}

/// Share of pictures whose ImageNet top-1 is the same for both models.
pub fn agreement(a: &[usize], b: &[usize]) -> f32 {
    if a.is_empty() {
        return 1.0;
    }
    #[allow(clippy::cast_precision_loss)] // picture counts
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count() as f32;
    #[allow(clippy::cast_precision_loss)]
    let total = a.len() as f32;
    same / total
}
