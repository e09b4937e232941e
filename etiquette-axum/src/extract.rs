//! The extractor handlers receive.

use std::convert::Infallible;
use std::ops::Deref;

use axum_core::extract::{FromRef, FromRequestParts};
use etiquette_core::Etiquette;
use http::request::Parts;

/// The queue handle, extracted from any state holding an [`Etiquette`].
///
/// It dereferences to [`etiquette_core::Decorum`], so `add_task`,
/// `try_add_task` and `stats` are called on it directly; their errors turn
/// into responses through [`TaskRejected`](crate::TaskRejected).
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
#[derive(Debug, Clone)]
pub struct Decorum(pub etiquette_core::Decorum);

impl Deref for Decorum {
    type Target = etiquette_core::Decorum;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Decorum
where
    Etiquette: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `from_ref` clones the state's `Etiquette`: turned into the `Decorum`
        // as it is, not cloned again.
        Ok(Self(Etiquette::from_ref(state).into()))
    }
}
