//! [`CodecError`] and the kinds callers match on.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use serde::{de, ser};

/// What kind of failure a [`CodecError`] is, for callers that act on it without parsing text.
///
/// Caches (memoized functions, computed region values) treat the "stale" kinds
/// ([`OtherShape`](CodecErrorKind::OtherShape), [`OldFormat`](CodecErrorKind::OldFormat),
/// [`NewerFormat`](CodecErrorKind::NewerFormat); see [`CodecError::is_stale`]) as a miss and
/// overwrite the value; plain collections report every kind as
/// [`Error::Decode`](crate::Error::Decode).
///
/// ```
/// use redis_caches::codec::{Codec, CodecErrorKind, Postcard, TypeTag};
///
/// let bytes = Postcard.encode(&7u32, &TypeTag::of::<u32>())?;
/// let err = Postcard.decode::<i64>(&bytes, &TypeTag::of::<i64>()).unwrap_err();
/// assert!(matches!(err.kind(), CodecErrorKind::OtherShape { .. }));
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecErrorKind {
    /// The bytes were not written by this codec: no header, another magic byte.
    Foreign,
    /// Written by this codec for a type of another shape or another schema version: `expected`
    /// is the reading type's fingerprint, `found` the one in the bytes.
    OtherShape {
        /// The fingerprint of the type the bytes were read as.
        expected: u32,
        /// The fingerprint stored in the bytes.
        found: u32,
    },
    /// Written by an older stored-data format (`version` 1: redis-caches 0.1).
    OldFormat {
        /// The format version byte found.
        version: u8,
    },
    /// Written by a newer stored-data format than this release reads.
    NewerFormat {
        /// The format version byte found.
        version: u8,
    },
    /// The header is right but the body is damaged: truncated, trailing bytes, or contents
    /// that this codec never writes.
    Corrupt,
    /// Bytes without a type check (the [`Raw`](super::Raw) and `Json` (feature `json`) codecs,
    /// plain-text fields and members) that do not read as the requested type, such as `042`
    /// or non-UTF-8 bytes read as a plain-text field.
    Invalid,
    /// The codec cannot store this value or type faithfully: `NaN` in JSON, a struct in the
    /// raw codec, a type whose shape cannot be traced in postcard without a schema version.
    Unsupported,
    /// Anything else, such as an error of a custom codec made with [`CodecError::new`].
    Other,
}

impl CodecErrorKind {
    /// True for the kinds that mean "a valid value of another shape or format": a cache
    /// recomputes and overwrites such a value instead of failing.
    ///
    /// ```
    /// use redis_caches::codec::CodecErrorKind;
    /// assert!(CodecErrorKind::OldFormat { version: 1 }.is_stale());
    /// assert!(!CodecErrorKind::Corrupt.is_stale());
    /// ```
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            CodecErrorKind::OtherShape { .. }
                | CodecErrorKind::OldFormat { .. }
                | CodecErrorKind::NewerFormat { .. }
        )
    }
}

/// Why a value could not be encoded or decoded: a [`kind`](CodecError::kind) to match on, a
/// message saying what failed, and the underlying error (postcard's, serde_json's) as its
/// [`source`](std::error::Error::source). Collections turn it into
/// [`Error::Encode`](crate::Error::Encode) or [`Error::Decode`](crate::Error::Decode) naming
/// the key.
///
/// ```
/// use redis_caches::codec::{CodecError, CodecErrorKind};
/// let err = CodecError::new("bad");
/// assert_eq!(err.to_string(), "bad");
/// assert_eq!(err.kind(), CodecErrorKind::Other);
/// ```
#[derive(Clone)]
pub struct CodecError {
    kind: CodecErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl CodecError {
    /// An error of kind [`Other`](CodecErrorKind::Other) with this message, for custom
    /// codecs.
    ///
    /// ```
    /// use redis_caches::codec::CodecError;
    /// assert_eq!(CodecError::new("no").to_string(), "no");
    /// ```
    pub fn new(message: impl fmt::Display) -> Self {
        CodecError::with_kind(CodecErrorKind::Other, message)
    }

    /// An error of this kind with this message.
    ///
    /// ```
    /// use redis_caches::codec::{CodecError, CodecErrorKind};
    /// let err = CodecError::with_kind(CodecErrorKind::Corrupt, "truncated");
    /// assert_eq!(err.kind(), CodecErrorKind::Corrupt);
    /// ```
    pub fn with_kind(kind: CodecErrorKind, message: impl fmt::Display) -> Self {
        CodecError {
            kind,
            message: message.to_string(),
            source: None,
        }
    }

    /// This error with `source` as its cause.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use redis_caches::codec::CodecError;
    /// let cause = std::fmt::Error;
    /// assert!(CodecError::new("failed").with_source(cause).source().is_some());
    /// ```
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use redis_caches::codec::{Codec, CodecErrorKind, Raw, TypeTag};
    /// let err = Raw.encode(&f64::NAN, &TypeTag::of::<f64>()).unwrap_err();
    /// assert_eq!(err.kind(), CodecErrorKind::Unsupported);
    /// ```
    pub fn kind(&self) -> CodecErrorKind {
        self.kind
    }

    /// Shorthand for [`self.kind().is_stale()`](CodecErrorKind::is_stale): the bytes are a
    /// value of another shape or format, which a cache treats as a miss.
    ///
    /// ```
    /// use redis_caches::codec::{Codec, Postcard, TypeTag};
    /// let bytes = Postcard.encode(&7u32, &TypeTag::of::<u32>())?;
    /// assert!(Postcard.decode::<String>(&bytes, &TypeTag::of::<String>()).unwrap_err().is_stale());
    /// # Ok::<(), redis_caches::codec::CodecError>(())
    /// ```
    pub fn is_stale(&self) -> bool {
        self.kind.is_stale()
    }
}

impl fmt::Debug for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CodecError");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", &source.to_string());
        }
        s.finish()
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for CodecError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// serde's own errors from a codec's serializer are refusals: the value (or a part of it) is
/// something the codec cannot store.
impl ser::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::with_kind(CodecErrorKind::Unsupported, msg)
    }
}

/// serde's own errors from a codec's deserializer: the bytes do not read as the type.
impl de::Error for CodecError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CodecError::with_kind(CodecErrorKind::Invalid, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_sources() {
        let e = CodecError::with_kind(CodecErrorKind::Corrupt, "x").with_source(fmt::Error);
        assert_eq!(e.kind(), CodecErrorKind::Corrupt);
        assert_eq!(e.to_string(), "x");
        assert!(e.source().is_some());
        assert!(format!("{e:?}").contains("Corrupt"));
        assert!(format!("{e:?}").contains("source"));
        assert!(CodecError::new("y").source().is_none());
        assert_eq!(
            <CodecError as ser::Error>::custom("s").kind(),
            CodecErrorKind::Unsupported
        );
        assert_eq!(
            <CodecError as de::Error>::custom("d").kind(),
            CodecErrorKind::Invalid
        );
    }

    #[test]
    fn stale_kinds() {
        let stale = [
            CodecErrorKind::OtherShape {
                expected: 1,
                found: 2,
            },
            CodecErrorKind::OldFormat { version: 1 },
            CodecErrorKind::NewerFormat { version: 3 },
        ];
        for kind in stale {
            assert!(kind.is_stale(), "{kind:?}");
            assert!(CodecError::with_kind(kind, "").is_stale());
        }
        for kind in [
            CodecErrorKind::Foreign,
            CodecErrorKind::Corrupt,
            CodecErrorKind::Invalid,
            CodecErrorKind::Unsupported,
            CodecErrorKind::Other,
        ] {
            assert!(!kind.is_stale(), "{kind:?}");
            assert!(!CodecError::with_kind(kind, "").is_stale());
        }
    }
}
