//! Float → integer conversions for values the caller has bounded (pixel sizes, counts).

/// Rounds a non-negative, bounded float to the nearest `u32`, saturating outside its range.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating by definition
pub fn round_u32(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Rounds a non-negative, bounded float to the nearest `usize`, saturating outside `u32`.
pub fn round_usize(x: f64) -> usize {
    round_u32(x) as usize
}
