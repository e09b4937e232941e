//! The extractor handlers receive.

use std::ops::Deref;

use etiquette_core::Etiquette;
use poem::{FromRequest, Request, RequestBody};

use crate::QueueNotRegistered;

/// The queue handle, extracted from the [`Etiquette`] attached with
/// `EndpointExt::data`.
///
/// It dereferences to [`etiquette_core::Decorum`], so `add_task`,
/// `try_add_task` and `stats` are called on it directly; their errors turn
/// into responses through [`TaskRejected`](crate::TaskRejected).
#[derive(Debug, Clone)]
pub struct Decorum(pub etiquette_core::Decorum);

impl Deref for Decorum {
    type Target = etiquette_core::Decorum;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<'a> FromRequest<'a> for Decorum {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.data::<Etiquette>()
            .map(|etiquette| Self(etiquette.decorum()))
            .ok_or_else(|| QueueNotRegistered.into())
    }
}
