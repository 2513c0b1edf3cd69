//! Confusion matrix and per-class accuracy.

use crate::events::Evaluation;

/// Builds the evaluation from true labels and predictions.
pub fn confusion_evaluation(classes: usize, labels: &[usize], predictions: &[usize], loss: f32) -> Evaluation {
    let mut confusion = vec![vec![0u32; classes]; classes];
    for (&t, &p) in labels.iter().zip(predictions) {
        confusion[t][p] += 1;
    }
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: u32 = row.iter().sum();
            (total > 0).then(|| row[c] as f32 / total as f32)
        })
        .collect();
    let correct: u32 = (0..classes).map(|c| confusion[c][c]).sum();
    Evaluation {
        loss,
        accuracy: correct as f32 / labels.len().max(1) as f32,
        confusion,
        per_class_accuracy,
        items: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_and_per_class_accuracy() {
        let e = confusion_evaluation(3, &[0, 0, 1, 1], &[0, 1, 1, 1], 0.5);
        assert_eq!(e.confusion, vec![vec![1, 1, 0], vec![0, 2, 0], vec![0, 0, 0]]);
        assert_eq!(e.per_class_accuracy, vec![Some(0.5), Some(1.0), None]);
        assert!((e.accuracy - 0.75).abs() < 1e-6);
    }
}
