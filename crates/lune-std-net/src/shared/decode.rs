//! Body decompression for the client and the server: bounded by the limit
//! that applies, and never a long stall of the Luau thread. Output is made
//! in small steps; the first [`INLINE_BUDGET`] bytes are inflated in place
//! (small bodies cost no thread hop) and the rest on a blocking thread, so
//! what decides is the decoded size, not the compressed one.

use std::io::{self, Cursor, Read};

use bytes::Bytes;
use lune_std_serde::compression::{self, CompressionFormat};

/// Decoded bytes made on the Luau thread before the rest moves off it.
const INLINE_BUDGET: usize = 256 * 1024;
/// Decoded bytes made per step.
const STEP: usize = 64 * 1024;

/// Why a body could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// It inflates to more than the limit.
    TooLarge { limit: usize },
    /// It is not valid data of its encoding.
    Invalid(io::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "it inflates to more than {limit} bytes"),
            Self::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// The format named by a `Content-Encoding` header value, if we decode it.
pub(crate) fn format_of(content_encoding: &str) -> Option<CompressionFormat> {
    CompressionFormat::from_header(content_encoding)
        .filter(|format| *format != CompressionFormat::Lz4)
}

struct Decoding {
    reader: Box<dyn Read + Send>,
    out: Vec<u8>,
    limit: usize,
}

impl Decoding {
    /// Inflates until `until` output bytes or the end; true at the end.
    fn run(&mut self, until: usize) -> Result<bool, DecodeError> {
        while self.out.len() < until {
            let start = self.out.len();
            // At most one byte past the limit is ever made.
            let room = (self.limit - start.min(self.limit)).saturating_add(1);
            let want = STEP.min(room);
            self.out.resize(start + want, 0);
            let read = self.reader.read(&mut self.out[start..]);
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.out.truncate(start);
                    return Err(DecodeError::Invalid(e));
                }
            };
            self.out.truncate(start + n);
            if self.out.len() > self.limit {
                return Err(DecodeError::TooLarge { limit: self.limit });
            }
            if n == 0 && want > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Inflates `data` encoded as `format` to at most `limit` bytes.
pub(crate) async fn decode(
    format: CompressionFormat,
    data: Bytes,
    limit: Option<usize>,
) -> Result<Bytes, DecodeError> {
    let reader = compression::decoder(format, Cursor::new(data)).map_err(DecodeError::Invalid)?;
    let mut decoding = Decoding {
        reader,
        out: Vec::new(),
        limit: limit.unwrap_or(usize::MAX - 1),
    };
    if decoding.run(INLINE_BUDGET)? {
        return Ok(Bytes::from(decoding.out));
    }
    let decoded = blocking::unblock(move || {
        decoding.run(usize::MAX)?;
        Ok(decoding.out)
    })
    .await?;
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_of_zeros(n: usize) -> Bytes {
        Bytes::from(
            compression::compress(CompressionFormat::Gzip, &vec![0; n], None).expect("compresses"),
        )
    }

    #[test]
    fn stops_at_the_limit_without_inflating_the_rest() {
        // 64 MiB of zeros from ~64 KiB of gzip: a bomb for a 1 MiB limit.
        let bomb = gzip_of_zeros(64 * 1024 * 1024);
        let result = async_io::block_on(decode(CompressionFormat::Gzip, bomb, Some(1 << 20)));
        assert!(matches!(result, Err(DecodeError::TooLarge { limit }) if limit == 1 << 20));
    }

    #[test]
    fn decodes_small_and_large_bodies_exactly() {
        for n in [
            0,
            10,
            INLINE_BUDGET - 1,
            INLINE_BUDGET,
            INLINE_BUDGET * 5 + 3,
        ] {
            let decoded =
                async_io::block_on(decode(CompressionFormat::Gzip, gzip_of_zeros(n), Some(n)))
                    .expect("within the limit");
            assert_eq!(decoded.len(), n);
        }
        let over = async_io::block_on(decode(CompressionFormat::Gzip, gzip_of_zeros(11), Some(10)));
        assert!(matches!(over, Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn garbage_is_invalid() {
        let result = async_io::block_on(decode(
            CompressionFormat::Zstd,
            Bytes::from_static(b"not zstd"),
            None,
        ));
        assert!(matches!(result, Err(DecodeError::Invalid(_))));
    }
}
