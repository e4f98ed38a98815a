//! The [`memoize!`](crate::memoize) macro.

/// Declares a memoized function in one item: a `static` [`Memo`](crate::memo::Memo) handle and a plain function
/// that calls it.
///
/// `#[memo(HANDLE, option(value), ...)]` names the static and applies builder options
/// ([`MemoBuilder`](crate::memo::MemoBuilder)'s methods, by name); `#[memo(try HANDLE, ...)]` declares a fallible
/// function, whose return type must be written `Result<T, E>` (with `E:
/// From<redis_caches::Error>`). Several arguments become a tuple. The memo's name is the
/// function's path (`module_path!()::name`): moving the function to another module orphans
/// its cached results.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use redis_caches::memoize;
///
/// memoize! {
///     /// The price of an item in a currency, cached for a minute.
///     #[memo(PRICE, ttl(Duration::from_secs(60)))]
///     pub fn price(id: u64, currency: String) -> f64 {
///         id as f64 * if currency == "EUR" { 0.9 } else { 1.0 }
///     }
/// }
///
/// let p = price(7, "EUR".into())?;
/// PRICE.forget((7, "EUR".into()))?;
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[macro_export]
macro_rules! memoize {
    (
        $(#[doc = $doc:literal])*
        #[memo(try $handle:ident $(, $opt:ident ( $($val:expr),* ))* $(,)?)]
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> Result<$ret:ty, $err:ty> $body:block
    ) => {
        #[doc = concat!("The memoized function behind [`", stringify!($name), "`].")]
        $vis static $handle: ::std::sync::LazyLock<$crate::memo::Memo<($($ty,)*), $ret, $err>> =
            ::std::sync::LazyLock::new(|| {
                $crate::memo::Memo::try_builder(
                    concat!(module_path!(), "::", stringify!($name)),
                    |($($arg,)*): ($($ty,)*)| -> ::std::result::Result<$ret, $err> { $body },
                )
                $(.$opt($($val),*))*
                .build()
            });
        $(#[doc = $doc])*
        $vis fn $name($($arg: $ty),*) -> ::std::result::Result<$ret, $err> {
            $handle.call(($($arg,)*))
        }
    };
    (
        $(#[doc = $doc:literal])*
        #[memo($handle:ident $(, $opt:ident ( $($val:expr),* ))* $(,)?)]
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
    ) => {
        #[doc = concat!("The memoized function behind [`", stringify!($name), "`].")]
        $vis static $handle: ::std::sync::LazyLock<$crate::memo::Memo<($($ty,)*), $ret>> =
            ::std::sync::LazyLock::new(|| {
                $crate::memo::Memo::builder(
                    concat!(module_path!(), "::", stringify!($name)),
                    |($($arg,)*): ($($ty,)*)| -> $ret { $body },
                )
                $(.$opt($($val),*))*
                .build()
            });
        $(#[doc = $doc])*
        $vis fn $name($($arg: $ty),*) -> $crate::Result<$ret> {
            $handle.call(($($arg,)*))
        }
    };
}
