//! Stratified train/validation split.

use crate::num::round_usize;
use crate::rng::SeededRng;

/// Splits sample indices so each class keeps its share of validation images: `round(n × frac)`
/// per class, at least one when the class has two or more images and `frac > 0`, and never the
/// whole class. Returns `(train, validation)` index lists.
pub fn stratified_split(
    labels: &[usize],
    num_classes: usize,
    val_fraction: f32,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SeededRng::new(seed);
    let mut train = Vec::new();
    let mut val = Vec::new();
    for class in 0..num_classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        let n = members.len();
        let mut n_val = round_usize(n as f64 * f64::from(val_fraction));
        if val_fraction > 0.0 && n >= 2 {
            n_val = n_val.max(1);
        }
        n_val = n_val.min(n.saturating_sub(1));
        val.extend_from_slice(&members[..n_val]);
        train.extend_from_slice(&members[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_keeps_one_validation_image_per_class() {
        let labels: Vec<usize> = [vec![0; 10], vec![1; 3], vec![2; 1]].concat();
        let (train, val) = stratified_split(&labels, 3, 0.2, 42);
        let count = |set: &[usize], c| set.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(count(&val, 0), 2);
        assert_eq!(count(&val, 1), 1);
        assert_eq!(count(&val, 2), 0, "a single image stays in training");
        assert_eq!(train.len() + val.len(), labels.len());
        assert_eq!(stratified_split(&labels, 3, 0.2, 42), (train, val));
    }
}
