//! A run's trigger input as the store keeps it: JSON text, or — from 1 KiB —
//! compressed with lz4.
//!
//! A large payload is paid for in bytes written twice (to the WAL, then by the
//! checkpoint into the file) by the one writer thread that every webhook waits
//! for, and JSON compresses well. lz4 rather than zstd because the CPU is what
//! is scarce: zstd's fastest level is several times slower for a little more
//! (docs/benchmarks.md). The compression runs in the caller's task,
//! not on the writer's thread.
//!
//! A compressed document is a BLOB: a zero byte (never the start of JSON text),
//! then lz4's block with the text's length in front. Text is stored as TEXT, so
//! small documents stay readable with `sqlite3`, and rows written before this
//! read as they are.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::Error;

/// Documents shorter than this are stored as text: compressing saves little.
const PACK_FROM: usize = 1024;

/// The mark of a compressed document.
const PACKED: u8 = 0;

/// The longest document a compressed one may claim to hold, so that a damaged
/// length cannot ask for all the memory there is (bodies are far smaller).
const MAX_UNPACKED: usize = 256 * 1024 * 1024;

/// A JSON document ready to be stored.
pub(super) enum Packed {
    Text(String),
    Compressed(Vec<u8>),
}

impl Packed {
    /// Compresses a long document when that makes it smaller by a tenth or more.
    pub(super) fn new(text: String) -> Self {
        if text.len() < PACK_FROM {
            return Packed::Text(text);
        }
        let mut packed = Vec::with_capacity(text.len() / 2);
        packed.push(PACKED);
        packed.extend_from_slice(&lz4_flex::compress_prepend_size(text.as_bytes()));
        if packed.len() * 10 <= text.len() * 9 {
            Packed::Compressed(packed)
        } else {
            Packed::Text(text)
        }
    }
}

impl ToSql for Packed {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Packed::Text(text) => ValueRef::Text(text.as_bytes()),
            Packed::Compressed(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

/// A stored document's bytes, whichever way it was stored.
pub(super) fn stored_bytes(value: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Vec<u8>> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
        _ => Err(rusqlite::types::FromSqlError::InvalidType),
    }
}

/// The JSON text of stored bytes.
pub(super) fn unpack(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, Error> {
    let corrupt = |why: String| Error::Corrupt(format!("a stored JSON document {why}"));
    match bytes {
        [PACKED, block @ ..] => {
            let length = block
                .get(..4)
                .and_then(|prefix| <[u8; 4]>::try_from(prefix).ok())
                .map(|prefix| u32::from_le_bytes(prefix) as usize)
                .ok_or_else(|| corrupt("is cut short".to_owned()))?;
            if length > MAX_UNPACKED {
                return Err(corrupt(format!("claims {length} bytes")));
            }
            let text = lz4_flex::decompress_size_prepended(block)
                .map_err(|error| corrupt(format!("does not decompress: {error}")))?;
            String::from_utf8(text)
                .map(std::borrow::Cow::Owned)
                .map_err(|_| corrupt("is not UTF-8".to_owned()))
        }
        text => std::str::from_utf8(text)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| corrupt("is not UTF-8".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_documents_are_compressed_and_read_back() {
        let long = serde_json::json!({"commits": vec!["a commit message that repeats"; 100]}).to_string();
        let packed = Packed::new(long.clone());
        let Packed::Compressed(bytes) = &packed else {
            panic!("a repetitive 3 KB document is compressed");
        };
        assert!(bytes.len() < long.len() / 4, "{} bytes", bytes.len());
        assert_eq!(unpack(bytes).expect("unpacks"), long);

        let short = r#"{"n":1}"#.to_owned();
        assert!(matches!(Packed::new(short.clone()), Packed::Text(text) if text == short));
        assert_eq!(unpack(short.as_bytes()).expect("text"), short);
    }

    #[test]
    fn damaged_documents_are_errors_not_panics() {
        for bytes in [
            &[PACKED][..],
            &[PACKED, 1, 2],
            &[PACKED, 0xff, 0xff, 0xff, 0x7f, 1],
            &[PACKED, 9, 0, 0, 0, 0xff],
            &[0xff, 0xfe],
        ] {
            assert!(unpack(bytes).is_err(), "{bytes:?}");
        }
    }
}
