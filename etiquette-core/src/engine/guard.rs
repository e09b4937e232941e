//! Calling user code without letting its panics unwind into the queue.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Calls user code, turning a panic into a message for the task's error:
/// the panic's own message, then where it happened.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| format!("{} (in {what})", panic_message(payload.as_ref())))
}

/// The message of a panic payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
