//! The handle each web adapter extracts, declared once.

/// Defines, in a web adapter, `pub struct Decorum<B = Memory>(pub etiquette_core::Decorum<B>)`:
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
        ///
        /// Generic over the queue's [backend](etiquette_core::backend), the
        /// in-memory queue by default.
        #[derive(Debug)]
        pub struct Decorum<B: $crate::backend::Backend = $crate::Memory>(pub $crate::Decorum<B>);

        impl<B: $crate::backend::Backend> ::std::clone::Clone for Decorum<B> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        impl<B: $crate::backend::Backend> ::std::ops::Deref for Decorum<B> {
            type Target = $crate::Decorum<B>;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}
