//! Data checks before training, from the pretrained backbone's view of the pictures: classes
//! too small or unbalanced, near-duplicates (above all across the train/validation split, where
//! they inflate validation accuracy), pictures that look more like another class than their own,
//! and pictures far from what ImageNet taught the network.

use serde::{Deserialize, Serialize};

/// Fewer pictures than this in a class is flagged.
pub const FEW_IMAGES: usize = 10;
/// Largest / smallest class size above this is flagged.
pub const IMBALANCE_RATIO: f32 = 3.0;
/// Cosine similarity of backbone features at or above which two pictures are near-duplicates.
/// Measured on the test photos: a flipped, rescaled, re-encoded copy scores 0.94, the closest
/// distinct photo 0.65.
pub const DUPLICATE_SIMILARITY: f32 = 0.9;
/// A picture is "more like class B" when its similarity to B's centre beats its own class's by this.
pub const MISLABEL_MARGIN: f32 = 0.03;
/// The pretrained network's top ImageNet probability below which a picture is "unfamiliar".
pub const UNFAMILIAR_CONFIDENCE: f32 = 0.15;
/// Share of unfamiliar pictures above which fine-tuning the backbone is advised.
pub const UNFAMILIAR_SHARE: f32 = 0.5;

/// One picture as the checks see it.
pub struct CheckItem<'a> {
    pub name: &'a str,
    pub label: usize,
    pub in_validation: bool,
    /// Pooled backbone features (1280 values).
    pub features: &'a [f32],
    /// The pretrained ImageNet head's top probability for this picture.
    pub imagenet_confidence: f32,
}

/// A finding about pictures names them (for people) and gives their positions among the checked
/// items (`pictures`, in the order named), which identify them even where names repeat (webcam
/// frames are all `webcam-N.jpg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    FewImages { class: String, count: usize },
    Imbalance { largest: String, largest_count: usize, smallest: String, smallest_count: usize },
    NearDuplicate { a: String, b: String, similarity: f32, across_split: bool, pictures: Vec<usize> },
    LooksLikeOtherClass { image: String, labelled: String, looks_like: String, margin: f32, pictures: Vec<usize> },
    Unfamiliar { images: Vec<String>, share: f32, advise_fine_tuning: bool, pictures: Vec<usize> },
}

impl Finding {
    /// The positions, among the checked items, of the pictures this finding is about.
    pub fn pictures(&self) -> &[usize] {
        match self {
            Finding::NearDuplicate { pictures, .. }
            | Finding::LooksLikeOtherClass { pictures, .. }
            | Finding::Unfamiliar { pictures, .. } => pictures,
            Finding::FewImages { .. } | Finding::Imbalance { .. } => &[],
        }
    }

    /// The finding in one or two plain sentences.
    pub fn describe(&self) -> String {
        match self {
            Finding::FewImages { class, count } => {
                format!("`{class}` has only {count} pictures: with fewer than {FEW_IMAGES} the model can hardly tell what matters. Add more.")
            }
            Finding::Imbalance { largest, largest_count, smallest, smallest_count } => format!(
                "`{largest}` has {largest_count} pictures but `{smallest}` only {smallest_count}: the model will lean towards `{largest}`. Balance the classes."
            ),
            Finding::NearDuplicate { a, b, similarity, across_split: true, .. } => format!(
                "{a} and {b} are near-duplicates (similarity {similarity:.3}), one in training and one in validation: validation accuracy is inflated. Remove one."
            ),
            Finding::NearDuplicate { a, b, similarity, .. } => {
                format!("{a} and {b} are near-duplicates (similarity {similarity:.3}): they count twice.")
            }
            Finding::LooksLikeOtherClass { image, labelled, looks_like, .. } => {
                format!("{image} is labelled `{labelled}` but looks more like `{looks_like}`: is it in the right class?")
            }
            Finding::Unfamiliar { images, share, advise_fine_tuning, .. } => {
                let advice = if *advise_fine_tuning {
                    " Far from ImageNet's pictures, a frozen backbone's features fit poorly: prefer discriminative fine-tuning."
                } else {
                    ""
                };
                format!(
                    "{} pictures ({:.0}%) look unlike anything ImageNet taught the network (it is unsure what they are).{advice}",
                    images.len(),
                    share * 100.0
                )
            }
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na.sqrt() * nb.sqrt()).max(1e-12)
}

/// Runs every check; findings come in the order of the list above.
pub fn check_data(classes: &[String], items: &[CheckItem<'_>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut counts = vec![0usize; classes.len()];
    items.iter().for_each(|i| counts[i.label] += 1);
    for (class, &count) in classes.iter().zip(&counts) {
        if count < FEW_IMAGES {
            findings.push(Finding::FewImages { class: class.clone(), count });
        }
    }
    if let (Some(max), Some(min)) = (
        counts.iter().enumerate().max_by_key(|(_, &c)| c),
        counts.iter().enumerate().filter(|(_, &c)| c > 0).min_by_key(|(_, &c)| c),
    ) {
        #[allow(clippy::cast_precision_loss)] // picture counts
        if *min.1 > 0 && *max.1 as f32 > IMBALANCE_RATIO * *min.1 as f32 {
            findings.push(Finding::Imbalance {
                largest: classes[max.0].clone(),
                largest_count: *max.1,
                smallest: classes[min.0].clone(),
                smallest_count: *min.1,
            });
        }
    }
    findings.extend(near_duplicates(items));
    findings.extend(looks_like_other(classes, items));
    let unfamiliar: Vec<usize> =
        (0..items.len()).filter(|&i| items[i].imagenet_confidence < UNFAMILIAR_CONFIDENCE).collect();
    if !unfamiliar.is_empty() {
        #[allow(clippy::cast_precision_loss)]
        let share = unfamiliar.len() as f32 / items.len() as f32;
        findings.push(Finding::Unfamiliar {
            images: unfamiliar.iter().map(|&i| items[i].name.to_string()).collect(),
            share,
            advise_fine_tuning: share > UNFAMILIAR_SHARE,
            pictures: unfamiliar,
        });
    }
    findings
}

/// Pairs at or above [`DUPLICATE_SIMILARITY`], pairs straddling the split first.
fn near_duplicates(items: &[CheckItem<'_>]) -> Vec<Finding> {
    let mut pairs = Vec::new();
    for (i, a) in items.iter().enumerate() {
        for (j, b) in items.iter().enumerate().skip(i + 1) {
            let similarity = cosine(a.features, b.features);
            if similarity >= DUPLICATE_SIMILARITY {
                pairs.push(Finding::NearDuplicate {
                    a: a.name.to_string(),
                    b: b.name.to_string(),
                    similarity,
                    across_split: a.in_validation != b.in_validation,
                    pictures: vec![i, j],
                });
            }
        }
    }
    pairs.sort_by_key(|f| !matches!(f, Finding::NearDuplicate { across_split: true, .. }));
    pairs
}

/// Leave-one-out class centres: a picture closer to another class's centre than to its own.
fn looks_like_other(classes: &[String], items: &[CheckItem<'_>]) -> Vec<Finding> {
    let Some(d) = items.first().map(|i| i.features.len()) else { return Vec::new() };
    let mut sums = vec![vec![0f32; d]; classes.len()];
    let mut counts = vec![0usize; classes.len()];
    for item in items {
        sums[item.label].iter_mut().zip(item.features).for_each(|(s, v)| *s += v);
        counts[item.label] += 1;
    }
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let own: Vec<f32> = sums[item.label].iter().zip(item.features).map(|(s, v)| s - v).collect();
        if counts[item.label] < 2 {
            continue;
        }
        let own_sim = cosine(item.features, &own);
        let best_other = (0..classes.len())
            .filter(|&c| c != item.label && counts[c] > 0)
            .map(|c| (c, cosine(item.features, &sums[c])))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((other, sim)) = best_other {
            if sim - own_sim > MISLABEL_MARGIN {
                out.push(Finding::LooksLikeOtherClass {
                    image: item.name.to_string(),
                    labelled: classes[item.label].clone(),
                    looks_like: classes[other].clone(),
                    margin: sim - own_sim,
                    pictures: vec![index],
                });
            }
        }
    }
    out.sort_by(|a, b| match (a, b) {
        (Finding::LooksLikeOtherClass { margin: x, .. }, Finding::LooksLikeOtherClass { margin: y, .. }) => {
            y.total_cmp(x)
        }
        _ => std::cmp::Ordering::Equal,
    });
    out
}
