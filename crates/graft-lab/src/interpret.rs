//! Reading a trained model's validation results: the pictures behind each confusion-matrix cell,
//! the ones it is most confidently wrong about, and the pairs of classes it mixes up, in words.

use graft_train::{Evaluation, ValItem};
use serde::{Deserialize, Serialize};

/// The validation pictures of class `truth` predicted as `predicted` (a confusion-matrix cell).
pub fn cell_images(eval: &Evaluation, truth: usize, predicted: usize) -> Vec<&ValItem> {
    eval.items.iter().filter(|i| i.label == truth && i.predicted == predicted).collect()
}

/// The `k` wrong predictions with the highest loss: confidently wrong first.
pub fn top_losses(eval: &Evaluation, k: usize) -> Vec<&ValItem> {
    let mut wrong: Vec<&ValItem> = eval.items.iter().filter(|i| i.predicted != i.label).collect();
    wrong.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    wrong.truncate(k);
    wrong
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusedPair {
    pub truth: usize,
    pub predicted: usize,
    pub count: u32,
}

impl ConfusedPair {
    pub fn describe(&self, classes: &[String]) -> String {
        let name = |i: usize| classes.get(i).map(String::as_str).unwrap_or("?");
        let (pictures, were) = if self.count == 1 { ("picture", "was") } else { ("pictures", "were") };
        format!("{} {pictures} of `{}` {were} taken for `{}`", self.count, name(self.truth), name(self.predicted))
    }
}

/// Off-diagonal cells with at least `min_count` pictures, most frequent first.
pub fn most_confused(eval: &Evaluation, min_count: u32) -> Vec<ConfusedPair> {
    let mut pairs: Vec<ConfusedPair> = eval
        .confusion
        .iter()
        .enumerate()
        .flat_map(|(truth, row)| {
            row.iter().enumerate().filter(move |(p, _)| *p != truth).map(move |(predicted, &count)| ConfusedPair {
                truth,
                predicted,
                count,
            })
        })
        .filter(|p| p.count >= min_count.max(1))
        .collect();
    pairs.sort_by(|a, b| b.count.cmp(&a.count).then(a.truth.cmp(&b.truth)));
    pairs
}
