//! Grad-CAM: which parts of a picture drove a prediction. The last convolutional block's 1280
//! channels (7×7 for a 224 input) are weighted by how much the class score grows with each
//! channel (the mean gradient), summed, and kept where positive.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use graft_data::Preprocess;
use graft_model::{Backbone, ImageClassifier};
use graft_train::{argmax, read_floats};
use image::RgbImage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saliency {
    /// Side of the square heat map (7 for a 224 input).
    pub side: usize,
    /// Row-major heat in [0, 1] over the centre crop the model saw.
    pub heat: Vec<f32>,
    /// The class explained and the model's probability for it.
    pub class: usize,
    pub probability: f32,
}

/// Grad-CAM of `class` (the predicted one when `None`) for one picture.
pub async fn grad_cam(
    model: &ImageClassifier,
    image: &RgbImage,
    preprocess: &Preprocess,
    class: Option<usize>,
    device: &Device,
) -> Result<Saliency, String> {
    let autodiff = device.clone().without_autodiff().autodiff();
    let s = preprocess.input_size as usize;
    let x = preprocess.eval(&preprocess.prepare(image));
    let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, s, s]), &device.clone().without_autodiff());
    // The activations are computed without gradients; the part after them is differentiated.
    let activations = model.backbone.feature_map(x);
    let [_, channels, h, w] = activations.dims();
    let leaf = activations.autodiff().require_grad();
    let head = model.head.clone().fork(&autodiff);
    let logits = head.forward(Backbone::pool(leaf.clone()));
    let probs = burn::tensor::activation::softmax(logits.clone().detach(), 1);
    let probs = read_floats(probs).await?;
    let class = class.unwrap_or_else(|| argmax(&probs));
    let score = logits.slice([0..1, class..class + 1]).sum();
    let grads = score.backward();
    let grad = leaf.grad(&grads).ok_or("no gradient reached the last block")?;
    let grad = read_floats(grad).await?;
    let acts = read_floats(leaf.detach()).await?;
    Ok(Saliency {
        side: h.max(w),
        heat: cam(&acts, &grad, channels, h * w),
        class,
        probability: probs.get(class).copied().unwrap_or(0.0),
    })
}

/// ReLU(Σ_k mean(∂y/∂A_k) · A_k), scaled to [0, 1].
pub fn cam(activations: &[f32], gradients: &[f32], channels: usize, cells: usize) -> Vec<f32> {
    let mut heat = vec![0f32; cells];
    #[allow(clippy::cast_precision_loss)] // 49 cells
    let inv = 1.0 / cells.max(1) as f32;
    for k in 0..channels {
        let range = k * cells..(k + 1) * cells;
        let weight: f32 = gradients[range.clone()].iter().sum::<f32>() * inv;
        for (h, a) in heat.iter_mut().zip(&activations[range]) {
            *h += weight * a;
        }
    }
    heat.iter_mut().for_each(|h| *h = h.max(0.0));
    let max = heat.iter().copied().fold(0.0, f32::max);
    if max > 0.0 {
        heat.iter_mut().for_each(|h| *h /= max);
    }
    heat
}

#[cfg(test)]
mod tests {
    #[test]
    fn cam_weights_channels_by_their_mean_gradient() {
        // Two channels over 4 cells: the first matters (positive gradient), the second hurts.
        let acts = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let grads = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        assert_eq!(super::cam(&acts, &grads, 2, 4), vec![1.0, 0.0, 0.0, 0.0]);
    }
}
