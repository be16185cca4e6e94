//! Geometry from a state vector (SPEC §10).

/// The largest norm a state vector may keep: vectors at or beyond the unit
/// sphere are scaled to just inside it.
pub const NORM_CEILING: f64 = 1.0 - 1e-6;

/// Euclidean norm of `vector`, scaled to [`NORM_CEILING`] when it is ≥ 1.
pub fn norm_from_state_vector(vector: &[f64]) -> f64 {
    let norm = libm::sqrt(vector.iter().map(|x| x * x).sum::<f64>());
    if norm >= 1.0 {
        NORM_CEILING
    } else {
        norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms() {
        assert_eq!(norm_from_state_vector(&[0.3, 0.4]), 0.5);
        assert_eq!(norm_from_state_vector(&[3.0, 4.0]), NORM_CEILING);
        assert_eq!(norm_from_state_vector(&[]), 0.0);
    }
}
