//! When to fetch a remote list next: `refresh` ±10 % after a success, a doubling retry after
//! failures (SPEC §2 `refresh`), and the jitter source that spreads fleets of gates apart.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First retry after a failure, unless `refresh` is shorter.
pub(crate) const RETRY_BASE: Duration = Duration::from_secs(60);
/// Fraction of the delay that jitter may add or remove.
const JITTER_FRACTION: f64 = 0.1;
/// Floor for any delay, so a zero `refresh` (the config should reject it) cannot spin.
const MIN_DELAY: Duration = Duration::from_millis(10);

/// The delay before the next fetch.
///
/// `consecutive_failures == 0` (last fetch succeeded): `refresh · (1 + 0.1·jitter)`.
/// Otherwise `min(1 min, refresh) · 2^(failures-1)`, capped at `refresh`, with the same ±10 %
/// jitter. `jitter` is clamped to `[-1, 1]`; NaN counts as 0.
pub(crate) fn next_delay(refresh: Duration, consecutive_failures: u32, jitter: f64) -> Duration {
    let base = match consecutive_failures {
        0 => refresh,
        n => {
            let first = RETRY_BASE.min(refresh);
            // 2^31 minutes already exceeds any sane refresh; saturate instead of overflowing.
            let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
            first.saturating_mul(factor).min(refresh)
        }
    };
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(-1.0, 1.0)
    };
    base.mul_f64(1.0 + JITTER_FRACTION * jitter).max(MIN_DELAY)
}

/// A jitter value in `[-1, 1]`, from std's per-process random hash keys mixed with the clock
/// (no extra crate; this only spreads load, it is not security-relevant).
pub(crate) fn random_jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    let bits = hasher.finish() >> 11; // 53 random bits: exactly representable in an f64
    (bits as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn waits_refresh_after_a_success_with_ten_percent_jitter() {
        assert_eq!(next_delay(DAY, 0, 0.0), DAY);
        assert_eq!(next_delay(DAY, 0, 1.0), DAY.mul_f64(1.1));
        assert_eq!(next_delay(DAY, 0, -1.0), DAY.mul_f64(0.9));
        assert_eq!(
            next_delay(DAY, 0, 7.0),
            DAY.mul_f64(1.1),
            "jitter is clamped"
        );
        assert_eq!(next_delay(DAY, 0, f64::NAN), DAY);
    }

    #[test]
    fn retries_after_one_minute_doubling_up_to_refresh() {
        assert_eq!(next_delay(DAY, 1, 0.0), MIN);
        assert_eq!(next_delay(DAY, 2, 0.0), 2 * MIN);
        assert_eq!(next_delay(DAY, 3, 0.0), 4 * MIN);
        assert_eq!(next_delay(DAY, 11, 0.0), 1024 * MIN);
        assert_eq!(next_delay(DAY, 12, 0.0), DAY, "2048 min exceeds a day");
        assert_eq!(next_delay(DAY, u32::MAX, 0.0), DAY, "no overflow");
    }

    #[test]
    fn retries_after_refresh_when_refresh_is_under_a_minute() {
        let refresh = Duration::from_secs(20);
        assert_eq!(next_delay(refresh, 1, 0.0), refresh);
        assert_eq!(next_delay(refresh, 5, 0.0), refresh);
    }

    #[test]
    fn jitters_retries_too() {
        assert_eq!(next_delay(DAY, 2, -1.0), (2 * MIN).mul_f64(0.9));
    }

    #[test]
    fn never_returns_a_zero_delay() {
        assert_eq!(next_delay(Duration::ZERO, 0, 0.0), MIN_DELAY);
        assert_eq!(next_delay(Duration::ZERO, 3, -1.0), MIN_DELAY);
    }

    #[test]
    fn random_jitter_stays_in_range_and_varies() {
        let values: Vec<f64> = (0..200).map(|_| random_jitter()).collect();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(values.iter().any(|v| *v < 0.0) && values.iter().any(|v| *v > 0.0));
    }
}
