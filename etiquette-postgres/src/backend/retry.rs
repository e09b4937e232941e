//! How a job's retry policy is kept in its row, and made again in the
//! process that claims it: the attempts in `max_attempts`, the rest in
//! `retry` (JSON). A `retry_if` predicate is code: it cannot be kept.

use std::time::Duration;

use etiquette_core::{RetryParts, RetryPolicy};
use serde_json::{Value, json};

use crate::jobs::{duration_ms, millis};

/// `parts` as kept in the `retry` column.
pub(crate) fn stored(parts: &RetryParts) -> Value {
    json!({
        "backoff_ms": millis(parts.backoff),
        "multiplier": parts.multiplier,
        "max_backoff_ms": millis(parts.max_backoff),
        "jitter": parts.jitter,
        "retry_timeouts": parts.retry_timeouts,
    })
}

/// The policy of a row with `max_attempts` and `retry`; what `retry` lacks
/// (an older row, a hand-written one) takes `RetryPolicy`'s defaults.
pub(crate) fn policy(max_attempts: i32, retry: &Value) -> RetryPolicy {
    let defaults = RetryPolicy::default().parts();
    let ms = |key: &str, default: Duration| {
        retry
            .get(key)
            .and_then(Value::as_f64)
            .and_then(duration_ms)
            .unwrap_or(default)
    };
    let multiplier = retry
        .get("multiplier")
        .and_then(Value::as_u64)
        .and_then(|multiplier| u32::try_from(multiplier).ok())
        .unwrap_or(defaults.multiplier);
    RetryPolicy::exponential(
        u32::try_from(max_attempts).unwrap_or(1),
        ms("backoff_ms", defaults.backoff),
    )
    .multiplier(multiplier)
    .max_backoff(ms("max_backoff_ms", defaults.max_backoff))
    .jitter(
        retry
            .get("jitter")
            .and_then(Value::as_f64)
            .unwrap_or(defaults.jitter),
    )
    .retry_timeouts(
        retry
            .get("retry_timeouts")
            .and_then(Value::as_bool)
            .unwrap_or(defaults.retry_timeouts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_survives_its_row() {
        let policy = RetryPolicy::exponential(5, Duration::from_millis(250))
            .multiplier(3)
            .max_backoff(Duration::from_secs(9))
            .jitter(0.25)
            .retry_timeouts(false);
        let parts = policy.parts();
        let again = super::policy(5, &stored(&parts)).parts();
        assert_eq!(again, parts);
    }

    #[test]
    fn a_row_without_settings_gets_the_defaults() {
        let parts = policy(4, &Value::Null).parts();
        let defaults = RetryPolicy::default().max_attempts(4).parts();
        assert_eq!(parts, defaults);
    }
}
