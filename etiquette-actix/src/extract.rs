//! The extractor handlers receive.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use etiquette_core::Etiquette;

use crate::QueueNotRegistered;

/// The queue handle, extracted from the [`Etiquette`] registered with
/// `App::app_data(web::ThinData(..))` or `App::app_data(web::Data::new(..))`.
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

impl FromRequest for Decorum {
    type Error = QueueNotRegistered;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let etiquette = req
            .app_data::<web::ThinData<Etiquette>>()
            .map(|data| &data.0)
            .or_else(|| req.app_data::<web::Data<Etiquette>>().map(|data| &***data));
        ready(
            etiquette
                .map(|etiquette| Self(etiquette.decorum()))
                .ok_or(QueueNotRegistered),
        )
    }
}
