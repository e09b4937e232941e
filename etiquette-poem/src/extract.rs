//! The extractor handlers receive.

use etiquette_core::Etiquette;
use poem::{FromRequest, Request, RequestBody};

use crate::QueueNotRegistered;

etiquette_core::define_decorum! {
    /// The queue handle, extracted from the [`Etiquette`] attached with
    /// `EndpointExt::data`.
}

impl<'a> FromRequest<'a> for Decorum {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.data::<Etiquette>()
            .map(|etiquette| Self(etiquette.decorum()))
            .ok_or_else(|| QueueNotRegistered.into())
    }
}
