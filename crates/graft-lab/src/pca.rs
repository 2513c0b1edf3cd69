//! A 2-D map of pictures: the first two principal components of their backbone features.

/// Coordinates of each row of `features` (`n × d`, row-major) on the first two principal axes.
/// Power iteration on the covariance, without forming it (`d` is 1280): `Xᵀ(X v)` per step.
pub fn pca_2d(features: &[f32], n: usize, d: usize) -> Vec<[f32; 2]> {
    if n == 0 || d == 0 || features.len() != n * d {
        return Vec::new();
    }
    let mut mean = vec![0f64; d];
    for row in features.chunks(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    #[allow(clippy::cast_precision_loss)] // picture counts
    let inv_n = 1.0 / n as f64;
    mean.iter_mut().for_each(|m| *m *= inv_n);
    let centred: Vec<f64> =
        features.chunks(d).flat_map(|row| row.iter().zip(&mean).map(|(v, m)| f64::from(*v) - m)).collect();
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for k in 0..2 {
        // A deterministic start that is not orthogonal to any axis in practice.
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + k * 13) % 17) as f64 * 0.01).collect();
        for _ in 0..100 {
            // w = Xᵀ (X v), minus what earlier axes explain.
            let xv: Vec<f64> = centred.chunks(d).map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum()).collect();
            let mut w = vec![0f64; d];
            for (row, s) in centred.chunks(d).zip(&xv) {
                for (wi, ri) in w.iter_mut().zip(row) {
                    *wi += ri * s;
                }
            }
            for axis in &axes {
                let dot: f64 = w.iter().zip(axis).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(axis).for_each(|(wi, ai)| *wi -= dot * ai);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            w.iter_mut().for_each(|x| *x /= norm);
            let change: f64 = w.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            v = w;
            if change < 1e-9 {
                break;
            }
        }
        axes.push(v);
    }
    #[allow(clippy::cast_possible_truncation)] // coordinates for a picture
    centred
        .chunks(d)
        .map(|row| {
            let p = |axis: &Vec<f64>| row.iter().zip(axis).map(|(a, b)| a * b).sum::<f64>() as f32;
            [p(&axes[0]), p(&axes[1])]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_main_direction() {
        // Points along (1, 1, 0) with small noise on the other axes.
        let mut f = Vec::new();
        for i in 0..20 {
            let t = i as f32 - 10.0;
            f.extend_from_slice(&[t, t, 0.01 * (i % 3) as f32]);
        }
        let xy = pca_2d(&f, 20, 3);
        assert_eq!(xy.len(), 20);
        // The first coordinate orders the points like t; the second is tiny.
        let spread1 = xy.iter().map(|p| p[0].abs()).fold(0.0, f32::max);
        let spread2 = xy.iter().map(|p| p[1].abs()).fold(0.0, f32::max);
        assert!(spread1 > 10.0 && spread2 < 0.1, "{spread1} {spread2}");
        assert!((xy[0][0] - xy[19][0]).abs() > 20.0);
    }
}
