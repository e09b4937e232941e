//! How a job's retry policy is kept in its row, and made again in the
//! process that claims it: the attempts in `max_attempts`, the rest in
//! `retry` (JSON). A `retry_if` predicate is code: it cannot be kept.

use std::time::Duration;

use etiquette_core::{RetryParts, RetryPolicy};
use serde_json::{Value, json};

use crate::jobs::{duration_ms, millis};

/// `parts` as kept in the `retry` column: only what differs from
/// `RetryPolicy`'s defaults, which [`policy`] fills in. Most jobs keep the
/// defaults, so most rows keep `{}`: the column was 136 of a row's 248
/// bytes, written again by each of the claim's and the outcome's updates.
pub(crate) fn stored(parts: &RetryParts) -> Value {
    let defaults = RetryPolicy::default().parts();
    let mut kept = serde_json::Map::new();
    if parts.backoff != defaults.backoff {
        kept.insert("backoff_ms".into(), json!(millis(parts.backoff)));
    }
    if parts.multiplier != defaults.multiplier {
        kept.insert("multiplier".into(), json!(parts.multiplier));
    }
    if parts.max_backoff != defaults.max_backoff {
        kept.insert("max_backoff_ms".into(), json!(millis(parts.max_backoff)));
    }
    if parts.jitter.to_bits() != defaults.jitter.to_bits() {
        kept.insert("jitter".into(), json!(parts.jitter));
    }
    if parts.retry_timeouts != defaults.retry_timeouts {
        kept.insert("retry_timeouts".into(), json!(parts.retry_timeouts));
    }
    Value::Object(kept)
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
    fn a_default_policy_keeps_nothing_and_each_setting_alone_survives() {
        let defaults = RetryPolicy::default().max_attempts(3);
        assert_eq!(stored(&defaults.parts()), json!({}));
        let changed = [
            defaults.clone().multiplier(7),
            defaults.clone().max_backoff(Duration::from_secs(7)),
            defaults.clone().jitter(0.7),
            defaults
                .clone()
                .retry_timeouts(!defaults.parts().retry_timeouts),
            RetryPolicy::exponential(3, Duration::from_millis(7)),
        ];
        for policy in changed {
            let kept = stored(&policy.parts());
            assert_eq!(
                kept.as_object().map(serde_json::Map::len),
                Some(1),
                "{kept}"
            );
            assert_eq!(super::policy(3, &kept).parts(), policy.parts(), "{kept}");
        }
    }

    #[test]
    fn a_row_without_settings_gets_the_defaults() {
        let parts = policy(4, &Value::Null).parts();
        let defaults = RetryPolicy::default().max_attempts(4).parts();
        assert_eq!(parts, defaults);
    }
}
