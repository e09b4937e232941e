//! The extractor handlers receive.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use etiquette_core::Etiquette;
use etiquette_core::backend::Backend;

use crate::QueueNotRegistered;

etiquette_core::define_decorum! {
    /// The queue handle, extracted from the [`Etiquette`] registered with
    /// `App::app_data(web::ThinData(..))` or `App::app_data(web::Data::new(..))`.
}

impl<B: Backend> FromRequest for Decorum<B> {
    type Error = QueueNotRegistered;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let etiquette = req
            .app_data::<web::ThinData<Etiquette<B>>>()
            .map(|data| &data.0)
            .or_else(|| {
                req.app_data::<web::Data<Etiquette<B>>>()
                    .map(|data| &***data)
            });
        ready(
            etiquette
                .map(|etiquette| Self(etiquette.decorum()))
                .ok_or(QueueNotRegistered),
        )
    }
}
