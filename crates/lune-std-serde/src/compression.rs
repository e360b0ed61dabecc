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

/// Output of an [`Inflater`], refusing to grow past its limit.
struct Sink {
    out: Vec<u8>,
    total: usize,
    limit: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.total.saturating_add(buf.len()) > self.limit {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "output limit"));
        }
        self.total += buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    /// Zlib or raw deflate, not yet known: the first bytes decide.
    Undecided(Vec<u8>, Sink),
    Gzip(flate2::write::MultiGzDecoder<Sink>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    Deflate(flate2::write::DeflateDecoder<Sink>),
    Brotli(Box<brotli::DecompressorWriter<Sink>>),
    Zstd(zstd::stream::write::Decoder<'static, Sink>),
    Done,
}

/// A decoder fed as compressed bytes arrive (a streamed response body),
/// never producing more than its limit: past it, [`Inflater::feed`] fails
/// with `ErrorKind::FileTooLarge` before the output grows further.
pub struct Inflater {
    decoder: Decoder,
}

/// Input is handed to the decoder in slices this large, so that one call
/// never makes more than a bounded amount of output past the limit check.
const FEED_SLICE: usize = 4096;

impl Inflater {
    /// A decoder for `format` (not LZ4, which has no streaming form).
    pub fn new(format: CompressionFormat, limit: usize) -> io::Result<Self> {
        let sink = Sink {
            out: Vec::new(),
            total: 0,
            limit,
        };
        let decoder = match format {
            CompressionFormat::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            CompressionFormat::Zlib => Decoder::Undecided(Vec::new(), sink),
            CompressionFormat::Brotli => {
                Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(sink, 4096)))
            }
            CompressionFormat::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(sink)?),
            CompressionFormat::Lz4 => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "lz4 has no streaming decoder",
                ));
            }
        };
        Ok(Self { decoder })
    }

    fn sink(&mut self) -> Option<&mut Sink> {
        match &mut self.decoder {
            Decoder::Undecided(_, sink) => Some(sink),
            Decoder::Gzip(d) => Some(d.get_mut()),
            Decoder::Zlib(d) => Some(d.get_mut()),
            Decoder::Deflate(d) => Some(d.get_mut()),
            Decoder::Brotli(d) => Some(d.get_mut()),
            Decoder::Zstd(d) => Some(d.get_mut()),
            Decoder::Done => None,
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        for slice in data.chunks(FEED_SLICE) {
            match &mut self.decoder {
                Decoder::Gzip(d) => d.write_all(slice)?,
                Decoder::Zlib(d) => d.write_all(slice)?,
                Decoder::Deflate(d) => d.write_all(slice)?,
                Decoder::Brotli(d) => d.write_all(slice)?,
                Decoder::Zstd(d) => d.write_all(slice)?,
                Decoder::Undecided(..) | Decoder::Done => {}
            }
        }
        Ok(())
    }

    /// Decodes `data` and returns the output it completed.
    pub fn feed(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        if let Decoder::Undecided(head, _) = &mut self.decoder {
            head.extend_from_slice(data);
            if head.len() < 2 {
                return Ok(Vec::new());
            }
            let Decoder::Undecided(head, sink) =
                std::mem::replace(&mut self.decoder, Decoder::Done)
            else {
                return Ok(Vec::new());
            };
            self.decoder = if has_zlib_header(&head) {
                Decoder::Zlib(flate2::write::ZlibDecoder::new(sink))
            } else {
                Decoder::Deflate(flate2::write::DeflateDecoder::new(sink))
            };
            self.write_all(&head)?;
        } else {
            self.write_all(data)?;
        }
        Ok(self
            .sink()
            .map(|s| std::mem::take(&mut s.out))
            .unwrap_or_default())
    }

    /// Ends the input; returns the last output. Truncated input is an error.
    pub fn finish(&mut self) -> io::Result<Vec<u8>> {
        if let Decoder::Undecided(head, _) = &self.decoder
            && !head.is_empty()
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "compressed body ended early",
            ));
        }
        let mut out = match std::mem::replace(&mut self.decoder, Decoder::Done) {
            Decoder::Gzip(d) => d.finish()?,
            Decoder::Zlib(d) => d.finish()?,
            Decoder::Deflate(d) => d.finish()?,
            Decoder::Brotli(d) => d.into_inner().map_err(|_| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "brotli body ended early")
            })?,
            Decoder::Zstd(mut d) => {
                d.flush()?;
                d.into_inner()
            }
            Decoder::Undecided(_, sink) => sink,
            Decoder::Done => return Ok(Vec::new()),
        };
        Ok(std::mem::take(&mut out.out))
    }
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
    fn inflater_decodes_in_pieces_and_stops_at_its_limit() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for format in [
            CompressionFormat::Brotli,
            CompressionFormat::Gzip,
            CompressionFormat::Zlib,
            CompressionFormat::Zstd,
        ] {
            let packed = compress(format, &data, None).unwrap();
            let mut inflater = Inflater::new(format, data.len()).unwrap();
            let mut out = Vec::new();
            for piece in packed.chunks(7) {
                out.extend(inflater.feed(piece).unwrap());
            }
            out.extend(inflater.finish().unwrap());
            assert_eq!(out, data, "{format:?}");

            let mut small = Inflater::new(format, 1000).unwrap();
            let err = small
                .feed(&packed)
                .and_then(|_| small.finish())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{format:?}");
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
