//! The typed jobs a process can run, by name: what makes a stored row a job
//! again. A job is stored as its [`Job::NAME`] and its arguments as JSON; a
//! process runs only the kinds it registered. A row it cannot make again
//! (a name no kind here has, arguments that no longer deserialise after a
//! change to the type) is a clear error for that row, which fails it with
//! the reason, never a panic or a job stuck running.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use etiquette_core::{BoxError, BoxFuture, Job, TaskContext};
use serde_json::Value;

/// Makes one attempt of a job made again from its row.
pub(crate) type Attempt = Box<dyn FnMut(TaskContext) -> BoxFuture<Result<(), BoxError>> + Send>;

type Decode = fn(Value) -> Result<Attempt, serde_json::Error>;

/// The kinds of typed jobs this process runs.
#[derive(Default, Clone)]
pub struct Jobs {
    decoders: HashMap<&'static str, (&'static str, Decode)>,
}

impl Jobs {
    /// No kinds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds kind `J`, found by [`J::NAME`](Job::NAME).
    ///
    /// # Errors
    /// [`DuplicateJobName`] if a kind with that name is registered already:
    /// two types under one name would run each other's rows.
    pub fn register<J: Job>(mut self) -> Result<Self, DuplicateJobName> {
        if self
            .decoders
            .insert(J::NAME, (J::NAME, decode::<J>))
            .is_some()
        {
            return Err(DuplicateJobName(J::NAME));
        }
        Ok(self)
    }

    /// Whether kind `name` is registered.
    pub fn knows(&self, name: &str) -> bool {
        self.decoders.contains_key(name)
    }

    /// Kind `name`'s [`Job::NAME`], if it is registered here: how a name
    /// read from a row or heard from another process becomes the
    /// `&'static str` an event carries.
    pub(crate) fn name(&self, name: &str) -> Option<&'static str> {
        self.decoders.get(name).map(|(kind, _)| *kind)
    }

    /// Makes the job of a row again, ready to run its attempts; with its
    /// kind's name.
    pub(crate) fn decode(
        &self,
        name: &str,
        args: Value,
    ) -> Result<(&'static str, Attempt), DecodeError> {
        let (kind, decode) = self
            .decoders
            .get(name)
            .ok_or_else(|| DecodeError::UnknownName {
                name: name.to_owned(),
                known: self.names(),
            })?;
        let attempt = decode(args).map_err(|error| DecodeError::BadArguments {
            name: name.to_owned(),
            error,
        })?;
        Ok((kind, attempt))
    }

    /// The kinds' names, sorted.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.decoders.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("names", &self.names())
            .finish()
    }
}

fn decode<J: Job>(args: Value) -> Result<Attempt, serde_json::Error> {
    let job: Arc<J> = Arc::new(serde_json::from_value(args)?);
    Ok(Box::new(move |context| {
        let job = Arc::clone(&job);
        Box::pin(async move { job.run(context).await.map_err(Into::into) })
    }))
}

/// A job's arguments as stored.
///
/// # Errors
/// Its `Serialize` failed (a map with non-string keys, a failing custom
/// impl): the job cannot be stored, and is not added.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn encode<J: Job>(job: &J) -> Result<Value, serde_json::Error> {
    serde_json::to_value(job)
}

/// Two kinds registered under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateJobName(pub &'static str);

impl fmt::Display for DuplicateJobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "two job kinds are registered under the name {:?}",
            self.0
        )
    }
}

impl std::error::Error for DuplicateJobName {}

/// Why a row could not be made a job again; the row fails with it.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// No kind registered here has the row's name.
    UnknownName {
        /// The row's name.
        name: String,
        /// The names registered here.
        known: Vec<&'static str>,
    },
    /// The row's arguments do not deserialise into its kind.
    BadArguments {
        /// The row's name.
        name: String,
        /// What serde said.
        error: serde_json::Error,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownName { name, known } => write!(
                f,
                "no job kind named {name:?} is registered in this process (it knows {known:?})"
            ),
            Self::BadArguments { name, .. } => {
                write!(f, "the arguments of a {name:?} job do not deserialise")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::UnknownName { .. } => None,
            Self::BadArguments { error, .. } => Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// A job kind that does nothing, for the registry to tell apart.
    macro_rules! kind {
        ($kind:ident $fields:tt, $name:literal) => {
            #[derive(Serialize, Deserialize)]
            struct $kind $fields

            impl Job for $kind {
                const NAME: &'static str = $name;
                type Error = std::convert::Infallible;

                async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
                    Ok(())
                }
            }
        };
    }

    kind!(SendEmail { to: String }, "send_email");
    kind!(Resize { width: u32 }, "resize");
    // Another type under `send_email`'s name.
    kind!(Impostor {}, "send_email");

    fn jobs() -> Jobs {
        Jobs::new()
            .register::<SendEmail>()
            .unwrap()
            .register::<Resize>()
            .unwrap()
    }

    #[test]
    fn a_stored_job_is_made_again_by_its_name() {
        let args = encode(&SendEmail {
            to: "ada@example.com".to_owned(),
        })
        .unwrap();
        assert_eq!(args, serde_json::json!({ "to": "ada@example.com" }));
        assert!(jobs().decode("send_email", args).is_ok());
        assert!(jobs().knows("resize") && !jobs().knows("unknown"));
        assert_eq!(jobs().name("resize"), Some(Resize::NAME));
        assert_eq!(jobs().name("unknown"), None);
    }

    #[test]
    fn a_row_of_an_unknown_kind_is_a_clear_error() {
        let Err(error) = jobs().decode("send_sms", serde_json::json!({})) else {
            panic!("an unknown kind decoded");
        };
        assert!(matches!(&error, DecodeError::UnknownName { name, .. } if name == "send_sms"));
        assert_eq!(
            error.to_string(),
            "no job kind named \"send_sms\" is registered in this process \
             (it knows [\"resize\", \"send_email\"])"
        );
    }

    #[test]
    fn arguments_that_no_longer_deserialise_are_a_clear_error() {
        // Stored before `width` became a number, say.
        let Err(error) = jobs().decode("resize", serde_json::json!({ "width": "wide" })) else {
            panic!("bad arguments decoded");
        };
        assert!(matches!(error, DecodeError::BadArguments { .. }));
        assert_eq!(
            error.to_string(),
            "the arguments of a \"resize\" job do not deserialise"
        );
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("invalid type"), "{cause}");
    }

    #[test]
    fn two_kinds_under_one_name_are_refused() {
        let error = jobs().register::<Impostor>().unwrap_err();
        assert_eq!(error, DuplicateJobName("send_email"));
    }
}
