//! Cross-entropy with label smoothing (on the device, for gradients) and the same quantities
//! computed on the host from read-back logits (for reporting, with one readback per batch).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

/// Smoothed one-hot targets, built on the host: `one_hot` reads back synchronously on wasm.
pub fn smoothed_targets(labels: &[usize], classes: usize, smoothing: f32, device: &Device) -> Tensor<2> {
    let off = smoothing / classes as f32;
    let on = 1.0 - smoothing + off;
    let mut values = vec![off; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        values[row * classes + label] = on;
    }
    Tensor::from_data(TensorData::new(values, [labels.len(), classes]), device)
}

pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let [batch, _] = logits.dims();
    (log_softmax(logits, 1) * targets).sum().neg().div_scalar(batch as f32)
}

/// One sample's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStat {
    pub predicted: usize,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// Probability of the true class.
    pub true_probability: f32,
    /// Cross-entropy of the true class.
    pub loss: f32,
}

/// Host-side statistics of one batch of logits `[n, classes]` (row-major).
pub struct BatchStats {
    /// Sum of per-sample (unsmoothed) cross-entropy.
    pub loss_sum: f32,
    pub correct: usize,
    pub predictions: Vec<usize>,
    pub rows: Vec<RowStat>,
}

pub fn batch_stats(logits: &[f32], classes: usize, labels: &[usize]) -> BatchStats {
    let mut loss_sum = 0.0;
    let mut correct = 0;
    let mut predictions = Vec::with_capacity(labels.len());
    let mut rows = Vec::with_capacity(labels.len());
    for (row, &label) in logits.chunks(classes).zip(labels) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = row.iter().map(|v| (v - max).exp()).sum::<f32>().ln() + max;
        let loss = log_sum - row[label];
        loss_sum += loss;
        let pred = argmax(row);
        correct += usize::from(pred == label);
        predictions.push(pred);
        rows.push(RowStat {
            predicted: pred,
            confidence: (row[pred] - log_sum).exp(),
            true_probability: (row[label] - log_sum).exp(),
            loss,
        });
    }
    BatchStats { loss_sum, correct, predictions, rows }
}

/// Index of the largest value (the first of equal ones; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stats_match_definition() {
        let logits = [2.0, 0.0, 0.0, 0.0, 3.0, 0.0];
        let s = batch_stats(&logits, 3, &[0, 2]);
        assert_eq!(s.predictions, vec![0, 1]);
        assert_eq!(s.correct, 1);
        let l0 = -(2f32.exp() / (2f32.exp() + 2.0)).ln();
        let l1 = -(1.0 / (3f32.exp() + 2.0)).ln();
        assert!((s.loss_sum - (l0 + l1)).abs() < 1e-5);
    }
}
