//! One-cycle learning-rate schedule: linear warm-up over the first 10 % of steps from a tenth of
//! the peak, then cosine annealing to a hundredth of it.

#[derive(Debug, Clone, Copy)]
pub struct OneCycle {
    pub total_steps: usize,
    pub warmup_fraction: f64,
}

impl OneCycle {
    pub fn new(total_steps: usize) -> Self {
        Self { total_steps: total_steps.max(1), warmup_fraction: 0.1 }
    }

    /// Multiplier of the peak learning rate at `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        // At least a few ramp steps (when the run has them): short browser runs need the ramp most.
        let by_fraction = graft_data::round_usize(self.total_steps as f64 * self.warmup_fraction);
        let warm = by_fraction.max((self.total_steps / 3).min(3)).max(1);
        if step < warm {
            return 0.1 + 0.9 * (step + 1) as f64 / warm as f64;
        }
        let rest = (self.total_steps - warm).max(1) as f64;
        let t = ((step - warm) as f64 / rest).min(1.0);
        let min = 0.01;
        min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_anneals() {
        let s = OneCycle::new(100);
        assert!(s.factor(0) < 0.2);
        assert!((s.factor(9) - 1.0).abs() < 1e-9);
        assert!(s.factor(50) < 1.0 && s.factor(50) > s.factor(90));
        assert!(s.factor(99) < 0.05);
    }
}
