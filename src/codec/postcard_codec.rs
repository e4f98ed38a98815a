//! The default codec: postcard behind a header that names the format and the type's shape.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Codec, CodecError, CodecErrorKind, TypeTag};

/// The default codec: postcard with a header carrying the format version and the fingerprint
/// of the type's shape (see the [module docs](super#the-postcard-header)).
///
/// ```
/// use redis_caches::codec::{Codec, CodecErrorKind, Postcard, TypeTag};
/// let tag = TypeTag::of::<(String, u8)>();
/// let bytes = Postcard.encode(&("hi".to_string(), 7u8), &tag)?;
/// assert_eq!(&bytes[..2], &[0xCA, 0x02]);
/// assert_eq!(&bytes[2..6], &tag.fingerprint().to_be_bytes());
/// assert_eq!(Postcard.decode::<(String, u8)>(&bytes, &tag)?, ("hi".to_string(), 7));
/// let err = Postcard.decode::<u64>(&bytes, &TypeTag::of::<u64>()).unwrap_err();
/// assert!(matches!(err.kind(), CodecErrorKind::OtherShape { .. }));
/// # Ok::<(), redis_caches::codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Postcard;

/// First byte of every postcard value.
pub const POSTCARD_MAGIC: u8 = 0xCA;
/// Second byte of every postcard value this release writes: the stored-data format version.
pub const POSTCARD_VERSION: u8 = 0x02;
/// The format version of redis-caches 0.1, whose fingerprint hashed the type's name: read
/// only to report [`CodecErrorKind::OldFormat`].
pub(super) const POSTCARD_VERSION_1: u8 = 0x01;
pub(super) const HEADER_LEN: usize = 6;
/// The first allocation of an encoded value: the header plus 58 bytes.
const ENCODE_CAPACITY: usize = 64;

pub(super) fn old_format(version: u8) -> CodecError {
    CodecError::with_kind(
        CodecErrorKind::OldFormat { version },
        format!(
            "written by stored-data format v{version} (redis-caches 0.1), which this release \
             does not read"
        ),
    )
}

pub(super) fn other_shape(tag: &TypeTag, found: u32) -> CodecError {
    CodecError::with_kind(
        CodecErrorKind::OtherShape {
            expected: tag.fingerprint(),
            found,
        },
        format!(
            "written for another type or shape (fingerprint {found:#010x}), read as `{}` \
             ({:#010x})",
            tag.name(),
            tag.fingerprint()
        ),
    )
}

fn unchecked(tag: &TypeTag) -> CodecError {
    CodecError::with_kind(
        CodecErrorKind::Unsupported,
        format!(
            "postcard cannot check `{}` when reading it back: {}; give it an explicit schema \
             version (and bump it on every change of the type) to store it",
            tag.name(),
            tag.untraced_reason().unwrap_or("its shape is unknown")
        ),
    )
}

impl Codec for Postcard {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        tag: &TypeTag,
    ) -> Result<Vec<u8>, CodecError> {
        if !tag.is_checked() {
            return Err(unchecked(tag));
        }
        // Room for the header and a typical small value: growing the vector costs a realloc
        // and a copy, which doubled the encoding cost of a 24-byte string.
        let mut out = Vec::with_capacity(ENCODE_CAPACITY);
        out.push(POSTCARD_MAGIC);
        out.push(POSTCARD_VERSION);
        out.extend_from_slice(&tag.fingerprint().to_be_bytes());
        postcard::to_extend(value, out).map_err(|e| {
            CodecError::with_kind(
                CodecErrorKind::Unsupported,
                format!("postcard cannot encode this `{}` value", tag.name()),
            )
            .with_source(e)
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], tag: &TypeTag) -> Result<T, CodecError> {
        if bytes.len() < 2 || bytes[0] != POSTCARD_MAGIC {
            return Err(CodecError::with_kind(
                CodecErrorKind::Foreign,
                "not written by redis-caches' postcard codec (no header)",
            ));
        }
        match bytes[1] {
            POSTCARD_VERSION => {}
            POSTCARD_VERSION_1 => return Err(old_format(POSTCARD_VERSION_1)),
            0 => {
                return Err(CodecError::with_kind(
                    CodecErrorKind::Foreign,
                    "not written by redis-caches' postcard codec (format byte 0)",
                ));
            }
            // Versions 1 and 2 are matched above. A newer format's header is at least as
            // long as this one's: two bytes alone are damage, not a newer value.
            v if bytes.len() < HEADER_LEN => {
                return Err(CodecError::with_kind(
                    CodecErrorKind::Corrupt,
                    format!(
                        "a truncated postcard header of {} bytes (format byte {v})",
                        bytes.len()
                    ),
                ));
            }
            v => {
                return Err(CodecError::with_kind(
                    CodecErrorKind::NewerFormat { version: v },
                    format!("written by stored-data format v{v}, newer than this release reads"),
                ));
            }
        }
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::with_kind(
                CodecErrorKind::Corrupt,
                format!("a truncated postcard header of {} bytes", bytes.len()),
            ));
        }
        if !tag.is_checked() {
            return Err(unchecked(tag));
        }
        let found = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        if found != tag.fingerprint() {
            return Err(other_shape(tag, found));
        }
        match postcard::take_from_bytes::<T>(&bytes[HEADER_LEN..]) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(CodecError::with_kind(
                CodecErrorKind::Corrupt,
                format!(
                    "{} trailing bytes after the `{}` value",
                    rest.len(),
                    tag.name()
                ),
            )),
            Err(e) => Err(CodecError::with_kind(
                CodecErrorKind::Corrupt,
                format!("the postcard body of a `{}` does not decode", tag.name()),
            )
            .with_source(e)),
        }
    }
}
