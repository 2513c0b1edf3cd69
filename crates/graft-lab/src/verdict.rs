//! Compare's verdicts, written from the run's own numbers: which row won, by how many pictures,
//! whether a validation set this small can tell the two apart, and — when the textbook's
//! expectation did not hold here — the likely reasons. A teaching tool must not contradict its
//! own table.

use crate::compare::{CompareRow, Lesson};

/// How two accuracies on the same `n` validation pictures compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// The first is ahead by more than the noise.
    Ahead,
    /// Within what `n` pictures can resolve.
    WithinNoise,
    /// The first is behind by more than the noise.
    Behind,
}

/// The noise of an accuracy measured on `n` pictures, as a fraction: two standard errors of a
/// proportion at the pair's mean accuracy, and never less than one picture.
pub fn noise(a: f32, b: f32, n: usize) -> f32 {
    let n = n.max(1) as f32;
    let p = ((a + b) / 2.0).clamp(0.0, 1.0);
    (2.0 * (p * (1.0 - p) / n).sqrt()).max(1.0 / n)
}

/// Whether `a` is ahead of, level with or behind `b` on `n` validation pictures.
pub fn compare(a: f32, b: f32, n: usize) -> Difference {
    let d = a - b;
    let margin = noise(a, b, n);
    if d > margin {
        Difference::Ahead
    } else if d < -margin {
        Difference::Behind
    } else {
        Difference::WithinNoise
    }
}

fn pct(x: f32) -> String {
    format!("{:.0}%", x * 100.0)
}

/// "3 of 12 pictures": the gap between two accuracies in pictures.
fn gap(a: f32, b: f32, n: usize) -> String {
    let pictures = ((a - b).abs() * n as f32).round();
    format!("{pictures:.0} of {n} validation picture{}", if n == 1 { "" } else { "s" })
}

/// The verdict of `row`, given the rows trained before it (in lesson order).
pub fn verdict(row: &CompareRow, earlier: &[CompareRow]) -> String {
    let Some(acc) = row.val_accuracy else {
        return format!("No validation result ({}): nothing to compare.", row.outcome);
    };
    let n = row.val_count.unwrap_or(0);
    let find = |lesson: Lesson| earlier.iter().find(|r| r.lesson == lesson);
    let against = |lesson: Lesson| find(lesson).and_then(|r| r.val_accuracy.map(|a| (r, a)));
    match row.lesson {
        Lesson::FrozenReplace => format!(
            "The baseline: {} on {n} validation pictures in {:.0} s; the backbone is unchanged, so every ImageNet answer is kept.",
            pct(acc),
            row.seconds
        ),
        Lesson::Stacked => match against(Lesson::FrozenReplace) {
            None => "No replaced-head row to compare with.".into(),
            Some((_, base)) => match compare(acc, base, n) {
                Difference::Behind => format!(
                    "The textbook held here: stacked {} against {} for the replaced head, behind by {}. Squeezed through the 1000 ImageNet scores, what your classes share that ImageNet never named was lost.",
                    pct(acc), pct(base), gap(acc, base, n)
                ),
                Difference::WithinNoise => format!(
                    "Stacked {} against {} for the replaced head: a difference of {}, within what a validation set this small can tell apart. The textbook's gap shows with more pictures, or with classes ImageNet has no names for.",
                    pct(acc), pct(base), gap(acc, base, n)
                ),
                Difference::Ahead => format!(
                    "Against the textbook, stacking won here: {} against {}, ahead by {}. That happens when your classes are close to ImageNet's own (its 1000 scores already tell them apart) or when the fresh 1280-input head had too few epochs to learn; try more epochs, or classes ImageNet never named.",
                    pct(acc), pct(base), gap(acc, base, n)
                ),
            },
        },
        Lesson::Discriminative => match against(Lesson::FrozenReplace) {
            None => "No frozen row to compare with.".into(),
            Some((frozen, base)) => {
                let cost = if frozen.seconds > 0.0 { row.seconds / frozen.seconds } else { 0.0 };
                match compare(acc, base, n) {
                    Difference::Ahead => format!(
                        "Adapting the backbone paid off: {} against {} frozen, ahead by {}, for {cost:.0}× the time.",
                        pct(acc), pct(base), gap(acc, base, n)
                    ),
                    Difference::WithinNoise => format!(
                        "No clear gain over freezing here: {} against {} ({}, within the noise), for {cost:.0}× the time. With this little data the pretrained features already fit; freezing is the faster choice.",
                        pct(acc), pct(base), gap(acc, base, n)
                    ),
                    Difference::Behind => format!(
                        "Fine-tuning did worse here: {} against {} frozen, behind by {}. With few pictures or epochs the backbone can overfit or not settle yet; for data this small, freezing is the safer choice.",
                        pct(acc), pct(base), gap(acc, base, n)
                    ),
                }
            }
        },
        Lesson::OneRate => {
            let kept = row.imagenet_agreement.map(pct).unwrap_or_else(|| "?".into());
            let Some((careful, careful_acc)) = against(Lesson::Discriminative) else {
                return format!("It kept {kept} of the ImageNet answers; no discriminative row to compare with.");
            };
            let careful_kept = careful.imagenet_agreement.map(pct).unwrap_or_else(|| "?".into());
            let damage = match (row.imagenet_agreement, careful.imagenet_agreement) {
                (Some(a), Some(b)) if a + 0.1 < b => format!(
                    "The damage the textbook warns of is visible: it kept {kept} of your pictures' ImageNet answers, the careful run {careful_kept}."
                ),
                (Some(_), Some(_)) => format!(
                    "It kept {kept} of the ImageNet answers against {careful_kept} for the careful run: little damage this time (a small rate or few steps)."
                ),
                _ => String::new(),
            };
            let result = match compare(acc, careful_acc, n) {
                Difference::Behind => format!(
                    "It also scored lower: {} against {}, behind by {}.",
                    pct(acc),
                    pct(careful_acc),
                    gap(acc, careful_acc, n)
                ),
                Difference::WithinNoise => format!(
                    "Its accuracy, {} against {}, is within the noise of {n} pictures.",
                    pct(acc),
                    pct(careful_acc)
                ),
                Difference::Ahead => format!(
                    "Yet it scored higher, {} against {}, ahead by {}: on data this close to ImageNet, or with this few steps, the wrecking can cost nothing visible — the ImageNet column shows what was lost.",
                    pct(acc),
                    pct(careful_acc),
                    gap(acc, careful_acc, n)
                ),
            };
            format!("{damage} {result}").trim().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(lesson: Lesson, acc: f32, n: usize, agreement: f32, seconds: f32) -> CompareRow {
        CompareRow {
            lesson,
            label: lesson.label().into(),
            teaches: lesson.lesson().into(),
            verdict: String::new(),
            val_accuracy: Some(acc),
            val_loss: Some(0.5),
            val_count: Some(n),
            val_curve: vec![acc],
            seconds,
            images_per_sec: 10.0,
            imagenet_agreement: Some(agreement),
            layer_change: Vec::new(),
            outcome: "done".into(),
        }
    }

    #[test]
    fn noise_follows_the_validation_size() {
        assert_eq!(compare(0.9, 0.6, 10), Difference::Ahead);
        // 12 pictures at ~75 %: two standard errors are 25 points.
        assert_eq!(compare(0.9, 0.7, 12), Difference::WithinNoise);
        assert_eq!(compare(0.9, 0.7, 200), Difference::Ahead);
        assert_eq!(compare(0.5, 0.5, 0), Difference::WithinNoise);
    }

    #[test]
    fn when_the_textbook_wins_the_verdicts_say_so() {
        let frozen = row(Lesson::FrozenReplace, 0.95, 60, 1.0, 10.0);
        let stacked = row(Lesson::Stacked, 0.70, 60, 1.0, 10.0);
        let careful = row(Lesson::Discriminative, 0.97, 60, 0.9, 60.0);
        let wrecked = row(Lesson::OneRate, 0.60, 60, 0.2, 60.0);
        let v = verdict(&stacked, std::slice::from_ref(&frozen));
        assert!(v.starts_with("The textbook held here: stacked 70% against 95%"), "{v}");
        assert!(v.contains("15 of 60 validation pictures"), "{v}");
        let v = verdict(&careful, &[frozen.clone(), stacked.clone()]);
        assert!(v.starts_with("No clear gain over freezing"), "{v}");
        let v = verdict(&wrecked, &[frozen, stacked, careful]);
        assert!(v.contains("damage the textbook warns of is visible") && v.contains("scored lower"), "{v}");
    }

    #[test]
    fn when_the_textbook_loses_the_verdicts_do_not_contradict_the_table() {
        // The case the leads saw: 12 pictures a class, 2 epochs, stacked 90 % and replaced 60 %.
        let frozen = row(Lesson::FrozenReplace, 0.6, 10, 1.0, 5.0);
        let stacked = row(Lesson::Stacked, 0.9, 10, 1.0, 5.0);
        let v = verdict(&stacked, std::slice::from_ref(&frozen));
        assert!(v.starts_with("Against the textbook, stacking won here: 90% against 60%, ahead by 3 of 10"), "{v}");
        assert!(!v.contains("was lost"), "{v}");
        // Level within the noise: said so, no winner claimed.
        let v = verdict(&row(Lesson::Stacked, 0.7, 10, 1.0, 5.0), std::slice::from_ref(&frozen));
        assert!(v.contains("within what a validation set this small can tell apart"), "{v}");
        let careful = row(Lesson::Discriminative, 0.2, 10, 0.9, 30.0);
        let v = verdict(&careful, &[frozen, stacked]);
        assert!(v.starts_with("Fine-tuning did worse here"), "{v}");
        let wrecked = row(Lesson::OneRate, 0.8, 10, 0.85, 30.0);
        let v = verdict(&wrecked, &[careful]);
        assert!(v.contains("little damage this time") && v.contains("Yet it scored higher"), "{v}");
    }
}
