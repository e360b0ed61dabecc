//! Compression codecs, shared by `serde.compress`/`serde.decompress` and by
//! `@lune/net`'s request and response decompression.

use std::io::{self, BufRead, Read, Write};

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionFormat {
    /// Brotli (`br`).
    Brotli,
    /// gzip (`gzip`, `x-gzip`).
    Gzip,
    /// LZ4 block format with the decompressed size prepended.
    Lz4,
    /// zlib-wrapped deflate (`deflate`); raw deflate is accepted when decoding.
    Zlib,
    /// Zstandard (`zstd`).
    Zstd,
}

impl CompressionFormat {
    /// The format named by an HTTP `Content-Encoding` value, if it is one.
    #[must_use]
    pub fn from_header(content_encoding: &str) -> Option<Self> {
        match content_encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Zlib),
            "br" => Some(Self::Brotli),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// Compresses `data`; `level` is the format's own scale, clamped to it.
pub fn compress(format: CompressionFormat, data: &[u8], level: Option<i32>) -> io::Result<Vec<u8>> {
    match format {
        CompressionFormat::Brotli => {
            let quality = level.unwrap_or(11).clamp(0, 11) as u32;
            let mut out = Vec::new();
            {
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, quality, 22);
                writer.write_all(data)?;
            }
            Ok(out)
        }
        CompressionFormat::Gzip => {
            let level = flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32);
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(data)?;
            encoder.finish()
        }
        CompressionFormat::Zlib => {
            let level = flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32);
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(data)?;
            encoder.finish()
        }
        CompressionFormat::Lz4 => Ok(lz4_flex::compress_prepend_size(data)),
        CompressionFormat::Zstd => zstd::encode_all(data, level.unwrap_or(3).clamp(1, 22)),
    }
}

/// Decompresses `data`. Zlib input without a zlib header is read as raw
/// deflate, as HTTP servers sending `Content-Encoding: deflate` often do.
pub fn decompress(format: CompressionFormat, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        CompressionFormat::Lz4 => {
            out = lz4_flex::decompress_size_prepended(data)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        other => {
            decoder(other, data)?.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// A reader that inflates `input` as it is read, so a caller can stop (or
/// move to another thread) at any output size: the way to decode input that
/// may be a decompression bomb. Zlib input without a zlib header is read as
/// raw deflate. LZ4 (a block format with its size up front) has no streaming
/// decoder and is an `Unsupported` error here.
pub fn decoder<'a, R: BufRead + Send + 'a>(
    format: CompressionFormat,
    mut input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match format {
        CompressionFormat::Brotli => Box::new(brotli::Decompressor::new(input, 4096)),
        CompressionFormat::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        CompressionFormat::Zlib => {
            if has_zlib_header(input.fill_buf()?) {
                Box::new(flate2::bufread::ZlibDecoder::new(input))
            } else {
                Box::new(flate2::bufread::DeflateDecoder::new(input))
            }
        }
        CompressionFormat::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        CompressionFormat::Lz4 => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "lz4 has no streaming decoder",
            ));
        }
    })
}

/// RFC 1950: CM = 8, window ≤ 32K, and the header checksum holds.
fn has_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CompressionFormat; 5] = [
        CompressionFormat::Brotli,
        CompressionFormat::Gzip,
        CompressionFormat::Lz4,
        CompressionFormat::Zlib,
        CompressionFormat::Zstd,
    ];

    #[test]
    fn roundtrip_every_format() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        for format in ALL {
            let packed = compress(format, &data, None).unwrap();
            assert_eq!(decompress(format, &packed).unwrap(), data, "{format:?}");
        }
    }

    #[test]
    fn raw_deflate_is_accepted_as_zlib() {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"raw deflate body").unwrap();
        let raw = encoder.finish().unwrap();
        assert_eq!(
            decompress(CompressionFormat::Zlib, &raw).unwrap(),
            b"raw deflate body"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for format in ALL {
            assert!(
                decompress(format, b"definitely not compressed data").is_err(),
                "{format:?}"
            );
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(
            CompressionFormat::from_header("x-gzip"),
            Some(CompressionFormat::Gzip)
        );
        assert_eq!(CompressionFormat::from_header("identity"), None);
    }
}
