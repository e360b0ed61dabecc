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

    /// The format's name as HTTP's `Content-Encoding` gives it (`lz4`,
    /// which HTTP does not use, by its own name).
    #[must_use]
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gzip",
            Self::Lz4 => "lz4",
            Self::Zlib => "deflate",
            Self::Zstd => "zstd",
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

/// The error an [`Inflater`] fails with past its output limit; find it
/// with [`is_limit_exceeded`].
#[derive(Debug)]
pub struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the decoded data is larger than its limit")
    }
}

impl std::error::Error for LimitExceeded {}

/// True when `error` is an [`Inflater`]'s [`LimitExceeded`].
#[must_use]
pub fn is_limit_exceeded(error: &io::Error) -> bool {
    matches!(error.get_ref(), Some(inner) if inner.is::<LimitExceeded>())
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
            return Err(io::Error::other(LimitExceeded));
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

/// A decoder fed as compressed bytes arrive (a streamed body), never
/// producing more than its limit: past it, [`Inflater::feed`] fails with
/// [`LimitExceeded`] before the output grows further. What the input so far
/// completes comes out at once (a sender's sync flush is honoured).
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

    fn write_slice(&mut self, slice: &[u8]) -> io::Result<()> {
        match &mut self.decoder {
            Decoder::Gzip(d) => d.write_all(slice),
            Decoder::Zlib(d) => d.write_all(slice),
            Decoder::Deflate(d) => d.write_all(slice),
            Decoder::Brotli(d) => d.write_all(slice),
            Decoder::Zstd(d) => d.write_all(slice),
            Decoder::Undecided(..) | Decoder::Done => Ok(()),
        }
    }

    /// Pushes out what the decoder holds back (flate2 and zstd keep the
    /// output of the last write until the next one).
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.decoder {
            Decoder::Gzip(d) => d.flush(),
            Decoder::Zlib(d) => d.flush(),
            Decoder::Deflate(d) => d.flush(),
            Decoder::Brotli(d) => d.flush(),
            Decoder::Zstd(d) => d.flush(),
            Decoder::Undecided(..) | Decoder::Done => Ok(()),
        }
    }

    /// Decodes `data` and returns the output it completed.
    pub fn feed(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        self.feed_some(data, usize::MAX).map(|(_, out)| out)
    }

    /// Decodes `data` until it made at least `max_output` bytes (for
    /// bounded work per call); returns how much of `data` it took, and the
    /// output. The rest of `data` is for the next call.
    pub fn feed_some(&mut self, data: &[u8], max_output: usize) -> io::Result<(usize, Vec<u8>)> {
        let mut used = 0;
        if let Decoder::Undecided(head, _) = &mut self.decoder {
            let want = 2 - head.len().min(2);
            let take = want.min(data.len());
            head.extend_from_slice(&data[..take]);
            used = take;
            if head.len() < 2 {
                return Ok((used, Vec::new()));
            }
            let Decoder::Undecided(head, sink) =
                std::mem::replace(&mut self.decoder, Decoder::Done)
            else {
                return Ok((used, Vec::new()));
            };
            self.decoder = if has_zlib_header(&head) {
                Decoder::Zlib(flate2::write::ZlibDecoder::new(sink))
            } else {
                Decoder::Deflate(flate2::write::DeflateDecoder::new(sink))
            };
            self.write_slice(&head)?;
        }
        for slice in data[used..].chunks(FEED_SLICE) {
            self.write_slice(slice)?;
            used += slice.len();
            if self.sink().is_some_and(|s| s.out.len() >= max_output) {
                break;
            }
        }
        self.flush()?;
        let out = self
            .sink()
            .map(|s| std::mem::take(&mut s.out))
            .unwrap_or_default();
        Ok((used, out))
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

/// A streaming encoder, the counterpart of [`Inflater`]: each piece of
/// input comes out compressed and flushed at once (a sync flush: a reader
/// decodes everything sent so far), so a streamed body's chunks, each
/// Server-Sent Event among them, reach the peer one by one.
pub struct Deflater {
    encoder: Encoder,
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Deflater {
    /// An encoder for `format` at the format's own `level` (clamped); not
    /// LZ4, which has no streaming form.
    pub fn new(format: CompressionFormat, level: i32) -> io::Result<Self> {
        let flate = || flate2::Compression::new(level.clamp(0, 9) as u32);
        let encoder =
            match format {
                CompressionFormat::Gzip => {
                    Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate()))
                }
                CompressionFormat::Zlib => {
                    Encoder::Zlib(flate2::write::ZlibEncoder::new(Vec::new(), flate()))
                }
                CompressionFormat::Brotli => Encoder::Brotli(Box::new(
                    brotli::CompressorWriter::new(Vec::new(), 4096, level.clamp(0, 11) as u32, 22),
                )),
                CompressionFormat::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(
                    Vec::new(),
                    level.clamp(1, 22),
                )?),
                CompressionFormat::Lz4 => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "lz4 has no streaming encoder",
                    ));
                }
            };
        Ok(Self { encoder })
    }

    /// Compresses `data` and flushes: the bytes to send for it.
    pub fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match &mut self.encoder {
            Encoder::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
            Encoder::Zlib(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
            Encoder::Brotli(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
            Encoder::Zstd(e) => {
                e.write_all(data)?;
                e.flush()?;
                Ok(std::mem::take(e.get_mut()))
            }
        }
    }

    /// Ends the stream: its last bytes (the format's trailer).
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.encoder {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zlib(e) => e.finish(),
            Encoder::Brotli(mut e) => {
                e.flush()?;
                Ok(e.into_inner())
            }
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deflater_flushes_every_piece_and_round_trips() {
        for format in [
            CompressionFormat::Gzip,
            CompressionFormat::Zlib,
            CompressionFormat::Brotli,
            CompressionFormat::Zstd,
        ] {
            let mut deflater = Deflater::new(format, 5).expect("an encoder");
            let mut inflater = Inflater::new(format, usize::MAX).expect("a decoder");
            let mut all = Vec::new();
            for piece in ["data: one\n\n", "data: two\n\n"] {
                let sent = deflater.compress(piece.as_bytes()).expect("compresses");
                // What was sent for this piece decodes to it, before the end.
                let got = inflater.feed(&sent).expect("decodes");
                assert_eq!(got, piece.as_bytes(), "{format:?} flushes each piece");
                all.extend(sent);
            }
            all.extend(deflater.finish().expect("finishes"));
            let whole = decompress(format, &all).expect("the whole stream decodes");
            assert_eq!(
                whole, b"data: one\n\ndata: two\n\n",
                "{format:?} round trips"
            );
        }
    }

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
            assert!(is_limit_exceeded(&err), "{format:?}: {err}");
        }
    }

    /// Regression: a gzip body whose first part was sync-flushed came out
    /// only once more bytes arrived (flate2 holds a write's output back).
    #[test]
    fn flushed_input_comes_out_at_once() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(b"first|").unwrap();
        gzip.flush().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(b"first|").unwrap();
        zlib.flush().unwrap();
        let mut brotli = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        brotli.write_all(b"first|").unwrap();
        brotli.flush().unwrap();
        let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        zstd.write_all(b"first|").unwrap();
        zstd.flush().unwrap();
        for (format, flushed) in [
            (CompressionFormat::Gzip, gzip.get_ref().clone()),
            (CompressionFormat::Zlib, zlib.get_ref().clone()),
            (CompressionFormat::Brotli, brotli.get_ref().clone()),
            (CompressionFormat::Zstd, zstd.get_ref().clone()),
        ] {
            let mut inflater = Inflater::new(format, 1 << 20).unwrap();
            assert_eq!(inflater.feed(&flushed).unwrap(), b"first|", "{format:?}");
        }
    }

    #[test]
    fn feeding_some_stops_near_the_output_asked_for() {
        let mut seed = 1u32;
        let data: Vec<u8> = (0..4 << 20)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 24) as u8
            })
            .collect();
        let packed = compress(CompressionFormat::Gzip, &data, None).unwrap();
        let mut inflater = Inflater::new(CompressionFormat::Gzip, usize::MAX).unwrap();
        let (used, out) = inflater.feed_some(&packed, 64 * 1024).unwrap();
        assert!(used < packed.len(), "input is left for later");
        assert!(
            out.len() >= 64 * 1024 && out.len() < 4 << 20,
            "{}",
            out.len()
        );
        let mut all = out;
        all.extend(inflater.feed(&packed[used..]).unwrap());
        all.extend(inflater.finish().unwrap());
        assert_eq!(all.len(), data.len());
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
