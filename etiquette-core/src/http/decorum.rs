//! The handle each web adapter extracts, declared once.

/// Defines, in a web adapter, `pub struct Decorum(pub etiquette_core::Decorum)`:
/// the queue handle as that framework's extractor, dereferencing to the
/// core's [`Decorum`](crate::Decorum). The doc comment given to the macro
/// says where the handle is extracted from; the macro adds what every
/// adapter's handle offers. The adapter adds its framework's extractor impl.
/// (Each adapter needs a type of its own: a framework's trait cannot be
/// implemented for a type of this crate.)
#[doc(hidden)]
#[macro_export]
macro_rules! define_decorum {
    ($(#[$attr:meta])*) => {
        $(#[$attr])*
        ///
        /// It dereferences to [`etiquette_core::Decorum`], so `add_task`,
        /// `try_add_task` and `stats` are called on it directly; their errors
        /// turn into responses through [`TaskRejected`](crate::TaskRejected).
        #[derive(Debug, Clone)]
        pub struct Decorum(pub $crate::Decorum);

        impl ::std::ops::Deref for Decorum {
            type Target = $crate::Decorum;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}
