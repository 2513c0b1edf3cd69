//! Prediction: images → class probabilities.

use burn::tensor::activation::softmax;
use burn::tensor::Device;
use graft_data::Preprocess;
use graft_model::ImageClassifier;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::batch::{images_to_tensor, read_matrix};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// The `k` most likely classes, best first: `(class index, probability)`.
    pub fn top_k(&self, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = self.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        ranked
    }
}

/// Runs `model` (a validation copy on a plain device) on decoded images, eval transform.
pub async fn predict(
    model: &ImageClassifier,
    preprocess: &Preprocess,
    images: &[RgbImage],
    device: &Device,
) -> Result<Vec<Prediction>, String> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let inputs = images.iter().map(|img| preprocess.eval(&preprocess.prepare(img))).collect();
    let x = images_to_tensor(inputs, preprocess.input_size, device);
    let probs = softmax(model.folded().forward(x), 1);
    let classes = probs.dims()[1];
    let host = read_matrix(probs).await?;
    Ok(host.chunks(classes).map(|row| Prediction { probabilities: row.to_vec() }).collect())
}
