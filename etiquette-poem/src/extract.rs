//! The extractor handlers receive.

use etiquette_core::Etiquette;
use etiquette_core::backend::Backend;
use poem::{FromRequest, Request, RequestBody};

use crate::QueueNotRegistered;

etiquette_core::define_decorum! {
    /// The queue handle, extracted from the [`Etiquette`] attached with
    /// `EndpointExt::data`.
}

impl<'a, B: Backend> FromRequest<'a> for Decorum<B> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.data::<Etiquette<B>>()
            .map(|etiquette| Self(etiquette.decorum()))
            .ok_or_else(|| QueueNotRegistered.into())
    }
}
