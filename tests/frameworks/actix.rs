pub(crate) struct Actix;
