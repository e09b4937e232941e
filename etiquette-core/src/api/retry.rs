//! When a failed task is tried again, and how long it waits first.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

type RetryIf = dyn Fn(&(dyn Error + Send + Sync + 'static)) -> bool + Send + Sync;

/// How a retryable task (one added with [`Decorum::task`](crate::Decorum::task))
/// is tried again after a failed attempt.
///
/// The wait before retry `n` (1 after the first attempt) is
/// `min(backoff × multiplierⁿ⁻¹, max_backoff)`, shortened by up to
/// `jitter × 100 %` at random. The task holds no concurrency slot while it
/// waits, and nothing waits after the final attempt.
///
/// Errors are retried unless [`retry_if`](Self::retry_if) says otherwise;
/// time-outs are retried unless [`retry_timeouts`](Self::retry_timeouts) is
/// off; panics never are (a panic is a bug, not a transient fault).
///
/// ```
/// use std::time::Duration;
/// use etiquette_core::RetryPolicy;
///
/// let policy = RetryPolicy::default() // 3 attempts, 1 s then 2 s
///     .max_attempts(5)
///     .max_backoff(Duration::from_secs(10))
///     .jitter(0.2)
///     .retry_if(|error| !error.is::<std::fmt::Error>());
/// assert_eq!(policy.delay_before_retry(4, 0.0), Duration::from_secs(8));
/// assert_eq!(policy.delay_before_retry(5, 0.0), Duration::from_secs(10));
/// ```
#[derive(Clone)]
#[must_use]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Duration,
    multiplier: u32,
    max_backoff: Duration,
    jitter: f64,
    retry_timeouts: bool,
    retry_if: Option<Arc<RetryIf>>,
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub const fn never() -> Self {
        Self::exponential(1, Duration::from_secs(1))
    }

    /// `max_attempts` attempts in all, waiting `backoff` before the first
    /// retry and doubling the wait each time, capped at 60 s, no jitter.
    /// `max_attempts` of 0 counts as 1.
    pub const fn exponential(max_attempts: u32, backoff: Duration) -> Self {
        Self {
            max_attempts: if max_attempts == 0 { 1 } else { max_attempts },
            backoff,
            multiplier: 2,
            max_backoff: Duration::from_secs(60),
            jitter: 0.0,
            retry_timeouts: true,
            retry_if: None,
        }
    }

    /// Attempts in all, the first included; 0 counts as 1.
    pub const fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = if max_attempts == 0 { 1 } else { max_attempts };
        self
    }

    /// The wait before the first retry.
    pub const fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// What each wait is multiplied by for the next (2 by default; 1 for a
    /// constant wait; 0 counts as 1).
    pub const fn multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = if multiplier == 0 { 1 } else { multiplier };
        self
    }

    /// The longest wait between attempts.
    pub const fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Shortens each wait by a random fraction of up to `fraction` (clamped
    /// to `0.0..=1.0`), so that tasks failing together do not retry together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Whether an attempt cut short by its time limit is retried (it is by
    /// default).
    pub const fn retry_timeouts(mut self, retry: bool) -> Self {
        self.retry_timeouts = retry;
        self
    }

    /// Retries only errors for which `predicate` returns true; the others
    /// are permanent and fail the task at once. Downcast to inspect:
    /// `error.is::<MyError>()`, `error.downcast_ref::<MyError>()`.
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&(dyn Error + Send + Sync + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retry_if = Some(Arc::new(predicate));
        self
    }

    /// Attempts in all.
    pub const fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The policy's settings, for a backend that stores them with each job
    /// and makes the policy again with the builders above where the job
    /// runs. A [`retry_if`](Self::retry_if) predicate is code, which no
    /// store can keep: `has_retry_if` says whether there is one.
    pub fn parts(&self) -> RetryParts {
        RetryParts {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            multiplier: self.multiplier,
            max_backoff: self.max_backoff,
            jitter: self.jitter,
            retry_timeouts: self.retry_timeouts,
            has_retry_if: self.retry_if.is_some(),
        }
    }

    /// The wait before retry `retry` (1 is the wait after the first
    /// attempt), with `unit` in `0.0..1.0` drawing the jitter: 0 waits the
    /// full backoff, values towards 1 shorten it by up to `jitter`.
    pub fn delay_before_retry(&self, retry: u32, unit: f64) -> Duration {
        let growth = self
            .multiplier
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let full = self
            .backoff
            .checked_mul(growth)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff);
        let shortening = self.jitter * unit.clamp(0.0, 1.0);
        if shortening <= 0.0 {
            return full;
        }
        // Saturating: near `Duration::MAX`, f64 rounding could overflow.
        Duration::try_from_secs_f64(full.as_secs_f64() * (1.0 - shortening))
            .unwrap_or(full)
            .min(full)
    }

    /// Whether a failed attempt `attempt` may be followed by another.
    pub(crate) fn retries_error(
        &self,
        attempt: u32,
        error: &(dyn Error + Send + Sync + 'static),
    ) -> bool {
        attempt < self.max_attempts && self.retry_if.as_ref().is_none_or(|retry| retry(error))
    }

    pub(crate) const fn retries_timeout(&self, attempt: u32) -> bool {
        attempt < self.max_attempts && self.retry_timeouts
    }

    /// The jittered delay before the attempt after `attempt`.
    pub(crate) fn next_delay(&self, attempt: u32) -> Duration {
        let unit = if self.jitter > 0.0 {
            fastrand::f64()
        } else {
            0.0
        };
        self.delay_before_retry(attempt, unit)
    }
}

/// A [`RetryPolicy`]'s settings, as [`RetryPolicy::parts`] reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryParts {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub backoff: Duration,
    /// What each wait is multiplied by for the next.
    pub multiplier: u32,
    /// The longest wait.
    pub max_backoff: Duration,
    /// The fraction by which each wait is shortened at random, at most.
    pub jitter: f64,
    /// Whether time-outs are retried.
    pub retry_timeouts: bool,
    /// Whether a `retry_if` predicate decides which errors are retried.
    pub has_retry_if: bool,
}

impl Default for RetryPolicy {
    /// The original's intent: 3 attempts, waiting 1 s then 2 s.
    fn default() -> Self {
        Self::exponential(3, Duration::from_secs(1))
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("multiplier", &self.multiplier)
            .field("max_backoff", &self.max_backoff)
            .field("jitter", &self.jitter)
            .field("retry_timeouts", &self.retry_timeouts)
            .field("retry_if", &self.retry_if.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_matches_the_original_without_the_final_sleep() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts(), 3);
        assert_eq!(policy.delay_before_retry(1, 0.0), Duration::from_secs(1));
        assert_eq!(policy.delay_before_retry(2, 0.0), Duration::from_secs(2));
        assert!(policy.retries_error(2, &std::fmt::Error));
        assert!(
            !policy.retries_error(3, &std::fmt::Error),
            "no retry after the last attempt"
        );
    }

    #[test]
    fn predicate_makes_errors_permanent() {
        let policy = RetryPolicy::default().retry_if(|error| !error.is::<std::fmt::Error>());
        assert!(!policy.retries_error(1, &std::fmt::Error));
        assert!(policy.retries_error(1, &std::io::Error::other("flaky")));
    }

    #[test]
    fn zero_settings_are_made_harmless() {
        assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
        let constant = RetryPolicy::default().multiplier(0);
        assert_eq!(constant.delay_before_retry(5, 0.0), Duration::from_secs(1));
        assert_eq!(RetryPolicy::default().jitter(f64::NAN).jitter, 0.0);
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (1u32..20, 0u64..10_000, 1u32..5, 0u64..120_000, 0.0f64..=1.0).prop_map(
            |(attempts, backoff_ms, multiplier, cap_ms, jitter)| {
                RetryPolicy::exponential(attempts, Duration::from_millis(backoff_ms))
                    .multiplier(multiplier)
                    .max_backoff(Duration::from_millis(cap_ms))
                    .jitter(jitter)
            },
        )
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_the_cap(policy in policy(), retry in 1u32..100, unit in 0.0f64..1.0) {
            prop_assert!(policy.delay_before_retry(retry, unit) <= policy.max_backoff);
        }

        #[test]
        fn jitter_stays_within_its_fraction(policy in policy(), retry in 1u32..100, unit in 0.0f64..1.0) {
            let full = policy.delay_before_retry(retry, 0.0);
            let jittered = policy.delay_before_retry(retry, unit);
            prop_assert!(jittered <= full);
            // One microsecond of slack for floating-point rounding.
            prop_assert!(jittered + Duration::from_micros(1) >= full.mul_f64(1.0 - policy.jitter));
        }

        #[test]
        fn without_jitter_waits_grow_geometrically_until_the_cap(policy in policy(), retry in 1u32..30) {
            let policy = policy.jitter(0.0);
            let this = policy.delay_before_retry(retry, 0.0);
            let next = policy.delay_before_retry(retry + 1, 0.0);
            prop_assert!(next >= this);
            let expected = policy.backoff.saturating_mul(policy.multiplier).min(policy.max_backoff);
            if retry == 1 {
                prop_assert_eq!(next, expected);
                prop_assert_eq!(this, policy.backoff.min(policy.max_backoff));
            }
        }
    }
}
