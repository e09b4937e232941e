//! The extractor handlers receive.

use std::convert::Infallible;

use axum_core::extract::{FromRef, FromRequestParts};
use etiquette_core::Etiquette;
use etiquette_core::backend::Backend;
use http::request::Parts;

etiquette_core::define_decorum! {
    /// The queue handle, extracted from any state holding an [`Etiquette`].
    ///
    /// ```
    /// use axum::extract::FromRef;
    /// use etiquette_axum::{Decorum, Etiquette, TaskRejected};
    ///
    /// #[derive(Clone, FromRef)]
    /// struct AppState {
    ///     etiquette: Etiquette,
    ///     greeting: &'static str,
    /// }
    ///
    /// async fn handler(decorum: Decorum) -> Result<String, TaskRejected> {
    ///     let task = decorum.try_add_task(async {})?;
    ///     Ok(format!("task {} accepted", task.id()))
    /// }
    /// # let _: axum::routing::MethodRouter<AppState> = axum::routing::get(handler);
    /// ```
}

impl<S, B> FromRequestParts<S> for Decorum<B>
where
    B: Backend,
    Etiquette<B>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `from_ref` clones the state's `Etiquette`: turned into the `Decorum`
        // as it is, not cloned again.
        Ok(Self(Etiquette::from_ref(state).into()))
    }
}
