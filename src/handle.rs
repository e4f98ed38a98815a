//! What every collection handle has besides its own methods, written once: `Clone`,
//! `Debug`, the sealed [`Collection`](crate::Collection) impl, and the four methods about the
//! key as a whole (`exists`, `clear`, `ttl`, `expire`).

/// Writes what every collection handle has besides its own methods: `Clone` (cheap, and
/// without bounds on the type parameters: the fields are `Arc`s and markers), `Debug` (key
/// and connection only, through `Engine::describe`, never a value), and the sealed
/// [`Collection`] impl through which [`Builder::build`] makes the handle.
///
/// The handle is `Name<params.., C>` with the codec parameter last, named `C`, and an
/// `engine: Arc<Engine<C>>` field. `clone` lists every field; `from_engine` builds the handle from the
/// `Engine` and the builder's `Extra` options.
macro_rules! collection_handle {
    (
        $name:ident [$($param:ident),*],
        redis_type: $redis_type:literal,
        extra: $extra:ty,
        clone: { $($field:ident),+ $(,)? },
        from_engine: |$engine:ident, $extra_arg:pat_param| $from_engine:expr $(,)?
    ) => {
        impl<$($param,)* C> Clone for $name<$($param,)* C> {
            fn clone(&self) -> Self {
                $name {
                    $($field: self.$field.clone()),+
                }
            }
        }

        impl<$($param,)* C: $crate::codec::Codec> ::std::fmt::Debug for $name<$($param,)* C> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.engine.describe(f, stringify!($name))
            }
        }

        impl<$($param,)* C> $crate::options::private::Sealed for $name<$($param,)* C> {}

        impl<$($param,)* C: $crate::codec::Codec> $crate::options::Collection
            for $name<$($param,)* C>
        {
            type Codec = C;
            type Extra = $extra;
            type WithCodec<C2: $crate::codec::Codec> = $name<$($param,)* C2>;
            const REDIS_TYPE: &'static str = $redis_type;

            fn from_engine($engine: $crate::engine::Engine<C>, $extra_arg: $extra) -> Self {
                $from_engine
            }

            fn python_class() -> &'static str {
                match stringify!($name) {
                    "RedisCache" => "Cache",
                    name => name,
                }
            }
        }
    };
}
pub(crate) use collection_handle;

/// Writes the four methods every collection has for its key as a whole (`exists`, `clear`,
/// `ttl`, `expire`), with their docs, inside the collection's own `impl` block: inherent
/// methods, so that users need no trait import. The handle must have a `engine: Arc<Engine<_>>`
/// field.
///
/// `handle` is an expression that builds a handle for the doc examples; the other arguments
/// are the first sentence of each method's doc, which says what the key means for that
/// collection. The macro adds the commands, round trips, errors and an example.
macro_rules! key_methods {
    (
        handle: $handle:literal,
        exists: $exists:literal,
        clear: $clear:literal,
        ttl: $ttl:literal,
        expire: $expire:literal $(,)?
    ) => {
        #[doc = $exists]
        /// `EXISTS`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// if !c.exists()? {
        ///     println!("never written, cleared or expired");
        /// }
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn exists(&self) -> $crate::Result<bool> {
            self.engine.exists()
        }

        #[doc = $clear]
        /// `DEL`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// let existed = c.clear()?;
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn clear(&self) -> $crate::Result<bool> {
            self.engine.clear()
        }

        #[doc = $ttl]
        /// `PTTL`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// if let Some(left) = c.ttl()?.remaining() {
        ///     println!("expires in {left:?}");
        /// }
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn ttl(&self) -> $crate::Result<$crate::Ttl> {
            self.engine.ttl()
        }

        #[doc = $expire]
        /// `PEXPIRE`, one round trip.
        ///
        /// # Errors
        ///
        /// Connection errors.
        ///
        /// ```no_run
        #[doc = concat!("# let c = ", $handle, ";")]
        /// c.expire(std::time::Duration::from_secs(10))?;
        /// # Ok::<(), redis_caches::Error>(())
        /// ```
        pub fn expire(&self, ttl: ::std::time::Duration) -> $crate::Result<bool> {
            self.engine.expire(ttl)
        }
    };
}
pub(crate) use key_methods;
