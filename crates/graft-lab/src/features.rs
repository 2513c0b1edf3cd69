//! What the pretrained (or a fine-tuned) network sees in each picture: pooled backbone features,
//! and its ImageNet top-1 with the probability it gives it. The data checks, the forgetting
//! measure and the 2-D map all read this.

use std::future::Future;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use graft_data::{Pixels, Preprocess};
use graft_model::ImageClassifier;
use graft_train::{argmax, read_floats};

/// Outputs for `n` pictures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackboneView {
    /// `n × 1280` pooled features, row-major.
    pub features: Vec<f32>,
    /// ImageNet top-1 class of each picture.
    pub top1: Vec<usize>,
    /// The probability the ImageNet head gives that class.
    pub confidence: Vec<f32>,
}

impl BackboneView {
    pub fn len(&self) -> usize {
        self.top1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.top1.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.features.len() / self.top1.len().max(1);
        &self.features[i * d..(i + 1) * d]
    }
}

/// Runs `model` — a backbone with the 1000-way ImageNet head — over `pictures` (eval transform),
/// `batch` at a time, awaiting `between(done, total)` after each batch (progress, yielding).
pub async fn backbone_view<F, Fut>(
    model: &ImageClassifier,
    pictures: &[&Pixels],
    preprocess: &Preprocess,
    device: &Device,
    batch: usize,
    mut between: F,
) -> Result<BackboneView, String>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let model = model.folded();
    let mut view = BackboneView::default();
    let s = preprocess.input_size as usize;
    for chunk in pictures.chunks(batch.max(1)) {
        let mut flat = Vec::with_capacity(chunk.len() * 3 * s * s);
        for pixels in chunk {
            flat.extend(preprocess.eval(&*pixels.rgb().map_err(|e| e.to_string())?));
        }
        let x = Tensor::<4>::from_data(TensorData::new(flat, [chunk.len(), 3, s, s]), device);
        let features = model.backbone.forward(x);
        let probs = softmax(model.head.forward(features.clone()), 1);
        let classes = probs.dims()[1];
        view.features.extend(read_floats(features).await?);
        let probs = read_floats(probs).await?;
        for row in probs.chunks(classes) {
            let best = argmax(row);
            view.top1.push(best);
            view.confidence.push(row[best]);
        }
        between(view.len(), pictures.len()).await;
    }
    Ok(view)
}
