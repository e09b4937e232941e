//! Typed jobs: work described by data, which a durable backend can store
//! and any process can run, unlike a closure.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TaskContext;
use crate::api::task::BoxError;

/// A kind of work, described by its arguments: implement it once per kind,
/// then add values of it with [`Decorum::job`](crate::Decorum::job).
///
/// The arguments are the type's fields, so they must be serialisable: a
/// durable backend stores them with [`NAME`](Self::NAME) and makes the job
/// again in whichever process runs it. The in-memory queue runs the value
/// it was given and serialises nothing.
///
/// [`run`](Self::run) is called once per attempt with that attempt's
/// [`TaskContext`]; return `Err` to fail the attempt (retried as the task's
/// [`RetryPolicy`](crate::RetryPolicy) says).
///
/// ```
/// use std::time::Duration;
/// use etiquette_core::{Etiquette, Job, RetryPolicy, TaskContext};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendWelcome {
///     to: String,
/// }
///
/// impl Job for SendWelcome {
///     const NAME: &'static str = "send_welcome";
///     type Error = std::io::Error;
///
///     async fn run(&self, context: TaskContext) -> Result<(), Self::Error> {
///         if context.attempt() == 1 {
///             return Err(std::io::Error::other("mail server busy"));
///         }
///         println!("welcome, {}", self.to);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(4)?;
/// let task = etiquette
///     .decorum()
///     .job(SendWelcome { to: "ada@example.com".into() })
///     .retry(RetryPolicy::exponential(3, Duration::from_secs(1)))
///     .add()
///     .await?;
/// task.outcome().await?;
/// assert_eq!(task.status().await?.attempts(), 2);
/// # Ok(()) }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind's name, stored with each job by durable backends, which
    /// make the job again from it and its arguments, and shown as `job` in
    /// the task's `tracing` span. Keep it stable: renaming it strands the
    /// jobs already stored under the old name.
    const NAME: &'static str;

    /// Why an attempt fails: any error that converts into a
    /// [`BoxError`] (`std::convert::Infallible` for jobs that cannot).
    type Error: Into<BoxError> + Send + 'static;

    /// Runs one attempt.
    fn run(&self, context: TaskContext) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
