//! Body decompression for the client and the server, whole or streamed:
//! ONE incremental decoder ([`Decoder`]), bounded by the limit that applies,
//! that hands out what the input so far completes (a sender's sync flush
//! comes out at once) and never stalls the Luau thread: each piece of input
//! is inflated in place up to [`INLINE_BUDGET`] bytes of output, and the
//! rest of it on a blocking thread, so what decides is the decoded size, not
//! the compressed one.

use bytes::Bytes;
use lune_std_serde::compression::{self, CompressionFormat, Inflater};

/// Decoded bytes made per piece of input on the Luau thread before the
/// rest of that piece moves off it.
const INLINE_BUDGET: usize = 256 * 1024;

/// Why a body could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// It inflates to more than the limit.
    TooLarge { limit: usize },
    /// It is not valid data of its encoding.
    Invalid(std::io::Error),
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

/// The decoder of one body, fed its pieces as they arrive.
pub(crate) struct Decoder {
    /// Out only while a blocking thread has it (a cancelled read loses it:
    /// the body is then broken).
    inflater: Option<Inflater>,
    limit: usize,
}

impl Decoder {
    pub(crate) fn new(
        format: CompressionFormat,
        limit: Option<usize>,
    ) -> Result<Self, DecodeError> {
        let limit = limit.unwrap_or(usize::MAX);
        Ok(Self {
            inflater: Some(Inflater::new(format, limit).map_err(DecodeError::Invalid)?),
            limit,
        })
    }

    fn error(&self, e: std::io::Error) -> DecodeError {
        if compression::is_limit_exceeded(&e) {
            DecodeError::TooLarge { limit: self.limit }
        } else {
            DecodeError::Invalid(e)
        }
    }

    fn inflater(&mut self) -> Result<&mut Inflater, DecodeError> {
        self.inflater.as_mut().ok_or_else(interrupted)
    }

    /// Decodes the next piece of the body: the output it completed.
    pub(crate) async fn feed(&mut self, data: Bytes) -> Result<Bytes, DecodeError> {
        let fed = self.inflater()?.feed_some(&data, INLINE_BUDGET);
        let (used, mut out) = fed.map_err(|e| self.error(e))?;
        if used < data.len() {
            let inflater = self.inflater.take().ok_or_else(interrupted)?;
            let rest = data.slice(used..);
            let (inflater, more) = blocking::unblock(move || {
                let mut inflater = inflater;
                let more = inflater.feed(&rest);
                (inflater, more)
            })
            .await;
            self.inflater = Some(inflater);
            out.extend(more.map_err(|e| self.error(e))?);
        }
        Ok(Bytes::from(out))
    }

    /// Ends the body: the last output; truncated input is an error.
    pub(crate) fn finish(&mut self) -> Result<Bytes, DecodeError> {
        let last = self.inflater()?.finish();
        last.map(Bytes::from).map_err(|e| self.error(e))
    }
}

fn interrupted() -> DecodeError {
    DecodeError::Invalid(std::io::Error::other(
        "decoding was interrupted by a cancelled read",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inflates a whole body `data` encoded as `format` to at most `limit` bytes.
    async fn decode(
        format: CompressionFormat,
        data: Bytes,
        limit: Option<usize>,
    ) -> Result<Bytes, DecodeError> {
        let mut decoder = Decoder::new(format, limit)?;
        let out = decoder.feed(data).await?;
        let last = decoder.finish()?;
        if last.is_empty() {
            return Ok(out);
        }
        let mut all = Vec::with_capacity(out.len() + last.len());
        all.extend_from_slice(&out);
        all.extend_from_slice(&last);
        Ok(Bytes::from(all))
    }

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

    /// Regression (Part C 2): a sync-flushed first part of a gzip body was
    /// held back until more bytes arrived.
    #[test]
    fn a_flushed_piece_comes_out_when_it_arrives() {
        use std::io::Write;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(b"first|").expect("written");
        gzip.flush().expect("flushed");
        let first = Bytes::from(gzip.get_ref().clone());
        gzip.write_all(b"second").expect("written");
        let whole = Bytes::from(gzip.finish().expect("finished"));
        let mut decoder = Decoder::new(CompressionFormat::Gzip, None).expect("a decoder");
        let out = async_io::block_on(decoder.feed(first.clone())).expect("decoded");
        assert_eq!(&out[..], b"first|");
        let rest = async_io::block_on(decoder.feed(whole.slice(first.len()..))).expect("decoded");
        let last = decoder.finish().expect("ended");
        assert_eq!([&rest[..], &last[..]].concat(), b"second");
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
