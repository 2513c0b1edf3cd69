//! How far fine-tuning moved each of the backbone's 19 layers, and what the backbone still knows
//! of ImageNet.

use graft_model::{HeadSpec, ImageClassifier, WeightMap};

/// Relative weight change ‖after − before‖ / ‖before‖ of each `features.N` layer (BatchNorm
/// running statistics excluded: they never train here). 19 values for MobileNetV2.
pub fn layer_changes(before: &WeightMap, after: &WeightMap) -> Vec<f32> {
    let layers = 1 + before
        .names()
        .filter_map(|n| n.strip_prefix("features.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    let mut diff = vec![0f64; layers];
    let mut norm = vec![0f64; layers];
    for name in before.names().filter(|n| !n.contains("running_")) {
        let Some(layer) = name.strip_prefix("features.").and_then(|r| r.split('.').next()?.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(shape) = before.shape(name) else { continue };
        let (Ok(a), Ok(b)) = (before.values(name, shape), after.values(name, shape)) else { continue };
        for (x, y) in a.iter().zip(b) {
            diff[layer] += f64::from(x - y).powi(2);
            norm[layer] += f64::from(*x).powi(2);
        }
    }
    #[allow(clippy::cast_possible_truncation)] // a ratio, shown with a few digits
    diff.iter().zip(&norm).map(|(d, n)| (d / n.max(1e-30)).sqrt() as f32).collect()
}

/// The fine-tuned backbone under the original ImageNet head: what it "still knows". Built from
/// the trained model's weights (`features.*`) and the pretrained `classifier.1`.
pub fn with_imagenet_head(
    trained: &WeightMap,
    pretrained: &WeightMap,
    device: &burn::tensor::Device,
) -> Result<ImageClassifier, String> {
    let mut merged = trained.clone();
    for name in ["classifier.1.weight", "classifier.1.bias"] {
        let shape = pretrained.shape(name).ok_or("the pretrained weights have no ImageNet head")?.to_vec();
        let values = pretrained.values(name, &shape).map_err(|e| e.to_string())?.to_vec();
        merged.insert(name, shape, values);
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
