//! How the queue reaches an executor, without depending on one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::SpawnError;

/// A boxed, sendable future: what the queue hands to a [`Spawner`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs the queue's workers and supplies its timer.
///
/// The queue never calls into a runtime directly, so it runs on any executor
/// that can implement these two methods. The trait is dyn-compatible: the
/// queue stores an `Arc<dyn Spawner>`.
///
/// With the default `tokio` feature, [`TokioSpawner`] is provided and used by
/// [`Etiquette::initiate`](crate::Etiquette::initiate).
///
/// # Example: a `futures` thread pool
///
/// ```
/// use std::time::Duration;
/// use etiquette_core::{BoxFuture, Etiquette, SpawnError, Spawner};
///
/// #[derive(Debug)]
/// struct Pool(futures_executor::ThreadPool);
///
/// impl Spawner for Pool {
///     fn spawn(&self, future: BoxFuture<()>) -> Result<(), SpawnError> {
///         self.0.spawn_ok(future);
///         Ok(())
///     }
///     fn sleep(&self, duration: Duration) -> BoxFuture<()> {
///         Box::pin(futures_timer::Delay::new(duration))
///     }
/// }
///
/// let pool = Pool(futures_executor::ThreadPool::new().unwrap());
/// let etiquette = Etiquette::builder().spawner(pool).build().unwrap();
/// futures_executor::block_on(async {
///     etiquette.decorum().add_task(async { println!("hello") }).await.unwrap();
///     assert_eq!(etiquette.release().await.completed, 1);
/// });
/// ```
pub trait Spawner: Send + Sync + 'static {
    /// Starts `future` in the background. It must be polled to completion
    /// unless the executor itself shuts down. Called when the queue is built,
    /// when a worker starts on demand (from whichever task added work), and
    /// for each retry's backoff timer. A panic here counts as a refusal.
    ///
    /// # Errors
    /// [`SpawnError`] when the executor cannot accept work any more.
    fn spawn(&self, future: BoxFuture<()>) -> Result<(), SpawnError>;

    /// A future that completes after `duration`; used for per-attempt time
    /// limits, retry backoffs and release deadlines. `duration` may be as
    /// large as `Duration::MAX` (sleep for ever, or until the far future).
    /// The builder asks for one when the queue is built and refuses a
    /// spawner whose `sleep` panics ([`BuildError::NoTimer`](crate::BuildError::NoTimer)).
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

impl fmt::Debug for dyn Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Spawner")
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio_spawner::TokioSpawner;

#[cfg(feature = "tokio")]
mod tokio_spawner {
    use super::{BoxFuture, Spawner};
    use crate::SpawnError;
    use std::time::Duration;
    use tokio::runtime::Handle;

    /// Runs tasks on one tokio runtime, fixed when the spawner is made.
    ///
    /// Binding to a runtime up front matters under actix-web, whose workers
    /// each run a private single-threaded runtime and drop its tasks when they
    /// stop: a queue built in `main` keeps running its tasks on `main`'s
    /// runtime, whichever worker handed them over.
    #[derive(Debug, Clone)]
    pub struct TokioSpawner {
        handle: Handle,
    }

    impl TokioSpawner {
        /// Binds to the runtime this is called from, if any.
        pub fn try_current() -> Option<Self> {
            Handle::try_current().ok().map(Self::new)
        }

        /// Binds to the runtime behind `handle`. The runtime must have its
        /// timer enabled (`#[tokio::main]` and `Builder::enable_all` do):
        /// building a queue on one without is refused with
        /// [`BuildError::NoTimer`](crate::BuildError::NoTimer).
        pub const fn new(handle: Handle) -> Self {
            Self { handle }
        }
    }

    impl Spawner for TokioSpawner {
        fn spawn(&self, future: BoxFuture<()>) -> Result<(), SpawnError> {
            drop(self.handle.spawn(future));
            Ok(())
        }

        fn sleep(&self, duration: Duration) -> BoxFuture<()> {
            // A tokio timer binds to the runtime current at its creation, so
            // create it inside ours, whatever the caller's context is.
            let _entered = self.handle.enter();
            Box::pin(tokio::time::sleep(duration))
        }
    }
}
