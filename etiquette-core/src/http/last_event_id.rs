//! The `Last-Event-ID` request header, parsed once for every adapter.
//!
//! The header comes from the client, so every byte string gets a defined
//! answer: nothing to resume from, an event id, or an error the adapters
//! turn into `400 Bad Request`.

use std::error::Error;
use std::fmt;

/// Parses the value of a `Last-Event-ID` header into the event id to resume
/// after, for [`Decorum::subscribe`](crate::Decorum::subscribe) and
/// [`Decorum::subscribe_task`](crate::Decorum::subscribe_task).
///
/// Surrounding ASCII whitespace is ignored. Then:
///
/// * an empty value is `Ok(None)`, the same as no header: an `EventSource`
///   sends it after the server reset the id with an empty `id:` field;
/// * ASCII digits are the event id; a number past `u64::MAX` is
///   `u64::MAX`, an id after every id the queue will ever issue, from which
///   nothing is replayed;
/// * anything else (a sign, a decimal point, letters, inner spaces, bytes
///   that are not UTF-8) is an [`InvalidLastEventId`].
///
/// ```
/// use etiquette_core::parse_last_event_id;
///
/// assert_eq!(parse_last_event_id(b" 42 "), Ok(Some(42)));
/// assert_eq!(parse_last_event_id(b""), Ok(None));
/// assert_eq!(parse_last_event_id(b"99999999999999999999"), Ok(Some(u64::MAX)));
/// assert!(parse_last_event_id(b"-1").is_err());
/// ```
///
/// # Errors
/// [`InvalidLastEventId`] when the trimmed value is not empty and not made
/// of ASCII digits only.
pub fn parse_last_event_id(value: &[u8]) -> Result<Option<u64>, InvalidLastEventId> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return Ok(None);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(InvalidLastEventId { _private: () });
    }
    let id = digits
        .iter()
        .try_fold(0_u64, |id, digit| {
            id.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .unwrap_or(u64::MAX);
    Ok(Some(id))
}

/// A `Last-Event-ID` header that is neither empty nor a decimal event id;
/// see [`parse_last_event_id`]. The web adapters answer it with
/// `400 Bad Request` and this error's message as the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidLastEventId {
    _private: (),
}

impl fmt::Display for InvalidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid Last-Event-ID header: expected a decimal event id")
    }
}

impl Error for InvalidLastEventId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_when_empty_or_blank() {
        for value in [&b""[..], b" ", b"\t \r\n"] {
            assert_eq!(parse_last_event_id(value), Ok(None), "{value:?}");
        }
    }

    #[test]
    fn decimal_ids_with_surrounding_whitespace() {
        assert_eq!(parse_last_event_id(b"0"), Ok(Some(0)));
        assert_eq!(parse_last_event_id(b"7"), Ok(Some(7)));
        assert_eq!(parse_last_event_id(b"007"), Ok(Some(7)));
        assert_eq!(parse_last_event_id(b" \t42\r\n"), Ok(Some(42)));
    }

    #[test]
    fn ids_past_u64_max_saturate() {
        assert_eq!(
            parse_last_event_id(b"18446744073709551615"),
            Ok(Some(u64::MAX))
        );
        assert_eq!(
            parse_last_event_id(b"18446744073709551616"),
            Ok(Some(u64::MAX))
        );
        assert_eq!(
            parse_last_event_id(b"99999999999999999999"),
            Ok(Some(u64::MAX))
        );
        let long = "9".repeat(1000);
        assert_eq!(parse_last_event_id(long.as_bytes()), Ok(Some(u64::MAX)));
    }

    #[test]
    fn anything_else_is_invalid() {
        let values: [&[u8]; 12] = [
            b"-1",
            b"+1",
            b"1.5",
            b"abc",
            b"1e3",
            b"0x10",
            b"1 2",
            b"1\t2",
            b"\xff",
            b"1\xc3\xa9",
            "\u{661}".as_bytes(), // ARABIC-INDIC DIGIT ONE: a digit, not ASCII.
            b"-",
        ];
        for value in values {
            assert!(parse_last_event_id(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn the_error_names_the_header_and_what_is_accepted() {
        let error = parse_last_event_id(b"abc").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid Last-Event-ID header: expected a decimal event id"
        );
        assert!(error.source().is_none());
    }
}
