//! permessage-deflate (RFC 7692) beneath tungstenite, which has no
//! extension support: [`Wire`] sits between tungstenite and the connection
//! and rewrites frames on their way through. Inbound, a compressed message
//! (RSV1 set) is inflated as its bytes arrive and handed to tungstenite as
//! plain frames of at most [`CHUNK`] bytes each, so tungstenite's
//! `maxMessageSize` check sees the inflated size and a compressed bomb
//! closes the socket with 1009 after at most one chunk past the limit.
//! Outbound, each whole text or binary message tungstenite writes is
//! deflated and sent with RSV1 set; control frames pass untouched.
//!
//! Without the extension negotiated, [`Wire`] passes every call straight
//! through: sockets that do not compress pay one branch.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_lite::{AsyncRead, AsyncWrite};
use http::{HeaderMap, HeaderValue, header};
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

/// The name of the extension, in `Sec-WebSocket-Extensions`.
const NAME: &str = "permessage-deflate";

/// What a client offers: the extension, letting the server bound the
/// window our compressor uses.
pub(crate) const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The largest plain frame handed to tungstenite per inflated piece.
const CHUNK: usize = 64 * 1024;

/// How much is read from the connection at once.
const READ: usize = 16 * 1024;

/// Bytes waiting for the connection past which a write waits for it.
const HIGH_WATER: usize = 256 * 1024;

/// What every compressed message ends with once its tail is removed (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's fastest level: the Luau thread deflates what a script sends.
const LEVEL: i32 = 1;

/// What the negotiation settled for the messages we send (what we inflate
/// needs nothing: a 15-bit window reads any peer's stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// The window our compressor may use (`*_max_window_bits`). At 8 we
    /// send every message uncompressed (zlib has no 256-byte raw window;
    /// an uncompressed message is always allowed).
    send_window_bits: u8,
    /// `*_no_context_takeover` for our side: each message starts a fresh
    /// compressor context.
    send_no_context: bool,
}

/// The parameters of one `permessage-deflate` offer or answer.
#[derive(Default)]
struct Offered {
    server_no_context: bool,
    client_no_context: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientBits,
}

/// `client_max_window_bits` in an offer or answer.
#[derive(Default, Clone, Copy)]
enum ClientBits {
    #[default]
    Absent,
    /// Without a value: an offer saying "you may bound my window".
    Any,
    Max(u8),
}

/// An extension's parameters as they were written: name and value.
type RawParams = Vec<(String, Option<String>)>;

/// The extensions in `headers`: each one's name and raw parameters.
fn extensions(headers: &HeaderMap) -> Vec<(String, RawParams)> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter(|ext| !ext.trim().is_empty())
        .map(|ext| {
            let mut parts = ext.split(';');
            let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let params = parts
                .map(|param| match param.split_once('=') {
                    Some((key, value)) => (
                        key.trim().to_ascii_lowercase(),
                        Some(value.trim().trim_matches('"').to_string()),
                    ),
                    None => (param.trim().to_ascii_lowercase(), None),
                })
                .collect();
            (name, params)
        })
        .collect()
}

/// A window size parameter: a decimal 8 to 15 without leading zeroes.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The parameters of an offer or answer; `None` when one is unknown,
/// repeated or malformed (RFC 7692 §7.1: such an offer is declined).
fn parse(params: &RawParams) -> Option<Offered> {
    let mut offered = Offered::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in params {
        if seen.contains(&key.as_str()) {
            return None;
        }
        seen.push(key);
        match (key.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => offered.server_no_context = true,
            ("client_no_context_takeover", None) => offered.client_no_context = true,
            ("server_max_window_bits", Some(value)) => {
                offered.server_max_window_bits = Some(window_bits(value)?);
            }
            ("client_max_window_bits", None) => offered.client_max_window_bits = ClientBits::Any,
            ("client_max_window_bits", Some(value)) => {
                offered.client_max_window_bits = ClientBits::Max(window_bits(value)?);
            }
            _ => return None,
        }
    }
    Some(offered)
}

/// A server's choice among a client's offers (`wsCompress`): the first
/// valid `permessage-deflate` one, with the answer to send back.
pub(crate) fn accept(headers: &HeaderMap) -> Option<(Params, HeaderValue)> {
    extensions(headers)
        .iter()
        .filter(|(name, _)| name == NAME)
        .find_map(|(_, params)| parse(params))
        .and_then(|offer| {
            let mut answer = String::from(NAME);
            if offer.server_no_context {
                answer.push_str("; server_no_context_takeover");
            }
            if let Some(bits) = offer.server_max_window_bits {
                answer.push_str("; server_max_window_bits=");
                answer.push_str(&bits.to_string());
            }
            let params = Params {
                send_window_bits: offer.server_max_window_bits.unwrap_or(15),
                send_no_context: offer.server_no_context,
            };
            Some((params, HeaderValue::from_str(&answer).ok()?))
        })
}

/// What a server answered to a client's handshake: the compression it
/// accepted (`None` when it declined), or why the answer is unacceptable:
/// an extension that was not offered, or parameters RFC 7692 rules out.
pub(crate) fn accepted(headers: &HeaderMap, offered: bool) -> Result<Option<Params>, String> {
    let answered = extensions(headers);
    let (name, params) = match answered.as_slice() {
        [] => return Ok(None),
        [one] if offered && one.0 == NAME => one,
        [one] if one.0 == NAME => {
            return Err(format!("the server enabled {NAME}, which was not offered"));
        }
        [one] => {
            return Err(format!(
                "the server enabled {}, which was not offered",
                one.0
            ));
        }
        _ => return Err("the server enabled more than the one extension offered".into()),
    };
    let invalid = || format!("the server's {name} parameters are invalid");
    let answer = parse(params).ok_or_else(invalid)?;
    let send_window_bits = match answer.client_max_window_bits {
        ClientBits::Absent => 15,
        ClientBits::Max(bits) => bits,
        // An answer gives a value (RFC 7692 §7.1.2.2).
        ClientBits::Any => return Err(invalid()),
    };
    Ok(Some(Params {
        send_window_bits,
        send_no_context: answer.client_no_context,
    }))
}

/// A WebSocket frame's header, as it is on the wire.
struct Header {
    /// FIN, RSV1-3 and the opcode.
    first: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// The header's own length in bytes.
    size: usize,
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV23: u8 = 0x30;

impl Header {
    /// The header at the start of `bytes`, once all of it is there.
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (&first, rest) = bytes.split_first()?;
        let (&second, rest) = rest.split_first()?;
        let (len, rest, mut size) = match second & 0x7f {
            0x7e => (
                u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
                &rest[2..],
                4,
            ),
            0x7f => (
                u64::from_be_bytes(rest.get(..8)?.try_into().ok()?),
                &rest[8..],
                10,
            ),
            short => (u64::from(short), rest, 2),
        };
        let mask = if second & 0x80 != 0 {
            size += 4;
            Some(rest.get(..4)?.try_into().ok()?)
        } else {
            None
        };
        Some(Self {
            first,
            mask,
            len,
            size,
        })
    }

    fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    /// Appends a header for a `len`-byte payload to `out`.
    fn put(out: &mut Vec<u8>, first: u8, len: usize, mask: Option<[u8; 4]>) {
        out.push(first);
        let masked = if mask.is_some() { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(masked | len as u8),
            126..=0xffff => {
                out.push(masked | 0x7e);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(masked | 0x7f);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if let Some(key) = mask {
            out.extend_from_slice(&key);
        }
    }
}

/// XORs `data` with `key`, `offset` bytes into the payload.
fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(i + offset) & 3];
    }
}

/// `payload` deflated and flushed, without the [`TAIL`] (RFC 7692 §7.2.1).
fn compress(deflate: &mut Deflate, payload: &[u8]) -> Option<Vec<u8>> {
    let base = deflate.total_in();
    let mut out = vec![0; payload.len() / 2 + 64];
    let mut filled = 0;
    loop {
        let taken = (deflate.total_in() - base) as usize;
        let before = deflate.total_out();
        let status = deflate.compress(
            &payload[taken..],
            &mut out[filled..],
            DeflateFlush::SyncFlush,
        );
        if status.is_err() {
            return None;
        }
        filled += (deflate.total_out() - before) as usize;
        if (deflate.total_in() - base) as usize == payload.len() && filled < out.len() {
            break;
        }
        if filled == out.len() {
            out.resize(out.len() * 2, 0);
        }
    }
    out.truncate(filled);
    if out.ends_with(&TAIL) {
        out.truncate(filled - TAIL.len());
    }
    if out.is_empty() {
        // zlib flushes nothing twice in a row: an empty message is one
        // empty block (RFC 7692 §7.2.3.6), never no bytes at all.
        out.push(0x00);
    }
    Some(out)
}

/// The connection under a WebSocket, compressing when negotiated.
pub(crate) struct Wire<S> {
    io: S,
    codec: Option<Box<Codec>>,
}

impl<S> Wire<S> {
    /// `io` as is, or with `params` compressing it; `client` says which
    /// side this is (a client masks what it sends, a server what it hands
    /// its tungstenite, which insists on masked frames from a client).
    pub(crate) fn new(io: S, params: Option<Params>, client: bool) -> Self {
        let codec = params.map(|params| {
            Box::new(Codec {
                inbound: Inbound::new(!client),
                outbound: Outbound::new(params),
            })
        });
        Self { io, codec }
    }
}

struct Codec {
    inbound: Inbound,
    outbound: Outbound,
}

/// The frame being read, past its header.
struct InFrame {
    left: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes taken so far (the mask's phase).
    taken: u64,
    /// Payload bytes at the head of the buffer already unmasked.
    unmasked: usize,
    fin: bool,
    /// Inflated, or handed on untouched.
    inflate: bool,
    /// Bytes of [`TAIL`] still to feed the inflater after the last frame.
    tail_left: usize,
}

/// A compressed message being inflated.
struct InMessage {
    opcode: u8,
    /// Whether its first plain frame went to tungstenite.
    started: bool,
    /// Whether any compressed byte came: a peer that sends none for an
    /// empty message gets no [`TAIL`] inflated (it would open a stored block).
    fed: bool,
}

struct Inbound {
    /// Read from the connection: `raw[start..end]` is not processed yet.
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    /// For tungstenite: `ready[sent..]` is not handed over yet.
    ready: Vec<u8>,
    sent: usize,
    frame: Option<InFrame>,
    message: Option<InMessage>,
    inflate: Inflate,
    /// Inflated bytes not framed yet: `inflated[..filled]`.
    inflated: Box<[u8]>,
    filled: usize,
    /// Frames handed to tungstenite carry a (zero) mask: a server's
    /// tungstenite refuses unmasked frames.
    mask_plain: bool,
    /// A frame was invalid: tungstenite got one it refuses, and nothing more.
    failed: bool,
}

impl Inbound {
    fn new(mask_plain: bool) -> Self {
        Self {
            raw: vec![0; READ].into_boxed_slice(),
            start: 0,
            end: 0,
            ready: Vec::new(),
            sent: 0,
            frame: None,
            message: None,
            inflate: Inflate::new(false, 15),
            inflated: vec![0; CHUNK].into_boxed_slice(),
            filled: 0,
            mask_plain,
            failed: false,
        }
    }

    fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.sent < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.sent);
                buf[..n].copy_from_slice(&self.ready[self.sent..self.sent + n]);
                self.sent += n;
                return Poll::Ready(Ok(n));
            }
            self.ready.clear();
            self.sent = 0;
            if self.failed {
                return Poll::Ready(Ok(0));
            }
            if self.step() {
                continue;
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.end == self.raw.len() {
                self.raw.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            let n = ready!(Pin::new(&mut *io).poll_read(cx, &mut self.raw[self.end..]))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            self.end += n;
        }
    }

    /// Moves the frames forward; false when more input is needed first.
    fn step(&mut self) -> bool {
        match &self.frame {
            None => self.start_frame(),
            Some(frame) if frame.inflate => self.inflate_frame(),
            Some(_) => self.pass_frame(),
        }
    }

    /// Reads a frame's header and decides what becomes of the frame.
    fn start_frame(&mut self) -> bool {
        let Some(header) = Header::parse(&self.raw[self.start..self.end]) else {
            return false;
        };
        let control = header.opcode() & 0x08 != 0;
        let compressed = header.first & RSV1 != 0;
        let inflate = match (&self.message, control, compressed) {
            _ if header.first & RSV23 != 0 => false,
            (_, true, _) | (None, false, false) => false,
            (None, false, true) if matches!(header.opcode(), 1 | 2) => {
                self.message = Some(InMessage {
                    opcode: header.opcode(),
                    started: false,
                    fed: false,
                });
                true
            }
            (Some(_), false, false) if header.opcode() == 0 => true,
            // RSV1 on a continuation, a new message inside a compressed
            // one: tungstenite gets a frame it refuses (1002).
            _ => {
                self.refuse();
                return true;
            }
        };
        if !inflate {
            // Handed on as it came: tungstenite judges it.
            let head = &self.raw[self.start..self.start + header.size];
            self.ready.extend_from_slice(head);
        }
        self.start += header.size;
        self.frame = Some(InFrame {
            left: header.len,
            mask: header.mask,
            taken: 0,
            unmasked: 0,
            fin: header.first & FIN != 0,
            inflate,
            tail_left: TAIL.len(),
        });
        true
    }

    /// Hands on the payload of a frame that is not compressed.
    fn pass_frame(&mut self) -> bool {
        let Some(frame) = &mut self.frame else {
            return false;
        };
        let n = (self.end - self.start).min(usize::try_from(frame.left).unwrap_or(usize::MAX));
        self.ready
            .extend_from_slice(&self.raw[self.start..self.start + n]);
        self.start += n;
        frame.left -= n as u64;
        if frame.left == 0 {
            self.frame = None;
            return true;
        }
        n > 0
    }

    /// Inflates what is here of a compressed frame's payload; a full chunk
    /// goes to tungstenite as a frame of its own.
    fn inflate_frame(&mut self) -> bool {
        let Some(mut frame) = self.frame.take() else {
            return false;
        };
        let here = (self.end - self.start).min(usize::try_from(frame.left).unwrap_or(usize::MAX));
        if let Some(key) = frame.mask
            && frame.unmasked < here
        {
            let phase = (frame.taken as usize + frame.unmasked) & 3;
            let fresh = self.start + frame.unmasked..self.start + here;
            apply_mask(&mut self.raw[fresh], key, phase);
            frame.unmasked = here;
        }
        let fed = self.message.as_ref().is_some_and(|m| m.fed);
        let input = if frame.left > 0 {
            &self.raw[self.start..self.start + here]
        } else if frame.fin && fed {
            &TAIL[TAIL.len() - frame.tail_left..]
        } else {
            &[][..]
        };
        let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self.inflate.decompress(
            input,
            &mut self.inflated[self.filled..],
            InflateFlush::SyncFlush,
        );
        let consumed = (self.inflate.total_in() - in_before) as usize;
        let produced = (self.inflate.total_out() - out_before) as usize;
        self.filled += produced;
        match status {
            // A peer may end a message's stream with BFINAL (RFC 7692 §7.2.3.3).
            Ok(Status::StreamEnd) => self.inflate.reset(false),
            Ok(Status::Ok | Status::BufError) => {}
            Err(_) => {
                // Not a deflate stream: tungstenite gets a frame it refuses.
                self.refuse();
                return true;
            }
        }
        if frame.left > 0 {
            if let Some(message) = &mut self.message {
                message.fed |= consumed > 0;
            }
            self.start += consumed;
            frame.left -= consumed as u64;
            frame.taken += consumed as u64;
            frame.unmasked = frame.unmasked.saturating_sub(consumed);
        } else if frame.fin {
            frame.tail_left -= consumed;
        }
        let progressed = consumed > 0 || produced > 0;
        if self.filled == self.inflated.len() {
            self.emit(false);
        } else if !progressed && frame.left == 0 {
            // The payload (and after the last frame, the tail) is all inflated.
            if frame.fin {
                self.emit(true);
                self.message = None;
            }
            return true;
        }
        self.frame = Some(frame);
        progressed || self.sent < self.ready.len()
    }

    /// Hands tungstenite a frame it refuses (reserved bits set): it fails
    /// the connection as for any protocol error; nothing more is read.
    fn refuse(&mut self) {
        self.frame = None;
        self.ready
            .extend_from_slice(&[RSV2 | FIN | 0x02, 0x80, 0, 0, 0, 0]);
        self.failed = true;
    }

    /// Hands the inflated bytes to tungstenite as one plain frame.
    fn emit(&mut self, fin: bool) {
        let Some(message) = &mut self.message else {
            return;
        };
        let opcode = if message.started { 0 } else { message.opcode };
        message.started = true;
        let first = if fin { FIN | opcode } else { opcode };
        let mask = self.mask_plain.then_some([0; 4]);
        Header::put(&mut self.ready, first, self.filled, mask);
        self.ready.extend_from_slice(&self.inflated[..self.filled]);
        self.filled = 0;
    }
}

struct Outbound {
    params: Params,
    /// Created with the first message it compresses.
    deflate: Option<Deflate>,
    /// What tungstenite wrote that is not a whole frame yet.
    taken: Vec<u8>,
    /// For the connection: `wire[written..]` is not written yet.
    wire: Vec<u8>,
    written: usize,
}

impl Outbound {
    fn new(params: Params) -> Self {
        Self {
            params,
            deflate: None,
            taken: Vec::new(),
            wire: Vec::new(),
            written: 0,
        }
    }

    fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.wire.len() - self.written >= HIGH_WATER {
            ready!(self.poll_wire(io, cx))?;
        }
        self.taken.extend_from_slice(buf);
        let mut at = 0;
        while let Some(header) = Header::parse(&self.taken[at..]) {
            let Some(end) = usize::try_from(header.len)
                .ok()
                .and_then(|len| (at + header.size).checked_add(len))
                .filter(|&end| end <= self.taken.len())
            else {
                break;
            };
            self.frame(&header, at, end);
            at = end;
        }
        self.taken.drain(..at);
        Poll::Ready(Ok(buf.len()))
    }

    /// One whole frame from tungstenite, `taken[at..end]`, onto the wire.
    fn frame(&mut self, header: &Header, at: usize, end: usize) {
        let whole_message = header.first & (FIN | RSV1 | RSV23) == FIN;
        if !whole_message || !matches!(header.opcode(), 1 | 2) || self.params.send_window_bits < 9 {
            self.wire.extend_from_slice(&self.taken[at..end]);
            return;
        }
        let payload = &mut self.taken[at + header.size..end];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let bits = self.params.send_window_bits;
        let deflate = self
            .deflate
            .get_or_insert_with(|| Deflate::new(LEVEL, false, bits));
        let Some(mut out) = compress(deflate, payload) else {
            // zlib refused (it never does with these settings): sent as it came.
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            self.wire.extend_from_slice(&self.taken[at..end]);
            return;
        };
        if self.params.send_no_context {
            deflate.reset();
        }
        if let Some(key) = header.mask {
            apply_mask(&mut out, key, 0);
        }
        Header::put(
            &mut self.wire,
            FIN | RSV1 | header.opcode(),
            out.len(),
            header.mask,
        );
        self.wire.extend_from_slice(&out);
    }

    /// Writes what waits for the connection.
    fn poll_wire<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.written < self.wire.len() {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, &self.wire[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.wire.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_read(cx, buf),
            Some(codec) => codec.inbound.poll_read(&mut this.io, cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_write(cx, buf),
            Some(codec) => codec.outbound.poll_write(&mut this.io, cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(codec) = &mut this.codec {
            ready!(codec.outbound.poll_wire(&mut this.io, cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(codec) = &mut this.codec {
            ready!(codec.outbound.poll_wire(&mut this.io, cx))?;
        }
        Pin::new(&mut this.io).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::{AsyncReadExt, AsyncWriteExt, future::block_on, io::Cursor};

    use super::*;

    fn offer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn a_server_takes_the_first_valid_offer() {
        let (params, answer) = accept(&offer(
            "x-other, permessage-deflate; server_max_window_bits=16, permessage-deflate; \
             server_max_window_bits=10; server_no_context_takeover; client_max_window_bits",
        ))
        .unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
        assert_eq!(
            params,
            Params {
                send_window_bits: 10,
                send_no_context: true
            }
        );
        let (params, answer) = accept(&offer("permessage-deflate")).unwrap();
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(params.send_window_bits, 15);
    }

    #[test]
    fn a_server_declines_malformed_offers() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=yes",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "x-webkit-deflate-frame",
        ] {
            assert!(accept(&offer(bad)).is_none(), "{bad} is declined");
        }
        assert!(accept(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_client_checks_the_answer() {
        let answer = |value: &str, offered| accepted(&offer(value), offered);
        assert_eq!(accepted(&HeaderMap::new(), true), Ok(None));
        assert_eq!(
            answer(
                "permessage-deflate; client_max_window_bits=9; client_no_context_takeover",
                true
            ),
            Ok(Some(Params {
                send_window_bits: 9,
                send_no_context: true
            }))
        );
        assert!(
            answer("permessage-deflate", false)
                .unwrap_err()
                .contains("not offered")
        );
        assert!(answer("x-other", true).unwrap_err().contains("not offered"));
        assert!(
            answer("permessage-deflate, permessage-deflate", true)
                .unwrap_err()
                .contains("more than")
        );
        assert!(
            answer("permessage-deflate; client_max_window_bits", true)
                .unwrap_err()
                .contains("invalid")
        );
    }

    /// A frame as tungstenite writes it: masked with `key` for a client.
    fn frame(first: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::new();
        Header::put(&mut out, first, payload.len(), key);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = key {
            apply_mask(&mut out[start..], key, 0);
        }
        out
    }

    /// Reads at most `step` bytes per call.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    /// The messages in plain `frames` (as a server's tungstenite sees them:
    /// masked), each with its opcode; at most `max` bytes per frame.
    fn messages_in(mut frames: &[u8], max: usize) -> Vec<(u8, Vec<u8>)> {
        let mut messages: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open = false;
        while let Some(header) = Header::parse(frames) {
            let key = header.mask.expect("frames to a server are masked");
            assert_eq!(header.first & (RSV1 | RSV23), 0, "plain frames");
            let len = header.len as usize;
            assert!(len <= max, "a frame of {len} bytes");
            let mut payload = frames[header.size..header.size + len].to_vec();
            apply_mask(&mut payload, key, 0);
            let payload = payload.as_slice();
            if header.opcode() == 0 {
                assert!(open, "a continuation continues a message");
                messages.last_mut().unwrap().1.extend_from_slice(payload);
            } else if header.opcode() & 0x08 == 0 {
                assert!(!open, "a new message after the last one ended");
                messages.push((header.opcode(), payload.to_vec()));
            } else {
                messages.push((header.opcode(), payload.to_vec()));
            }
            if header.opcode() & 0x08 == 0 {
                open = header.first & FIN == 0;
            }
            frames = &frames[header.size + len..];
        }
        assert!(frames.is_empty(), "no partial frame left");
        messages
    }

    /// Our client compresses `sent` (tungstenite's frames), our server
    /// inflates them read `step` bytes at a time.
    fn round_trip(params: Params, sent: &[Vec<u8>], step: usize) -> Vec<u8> {
        let mut client = Wire::new(Cursor::new(Vec::new()), Some(params), true);
        block_on(async {
            for frame in sent {
                client.write_all(frame).await.unwrap();
                client.flush().await.unwrap();
            }
        });
        let wire = client.io.into_inner();
        let trickle = Trickle {
            data: wire,
            at: 0,
            step,
        };
        let mut server = Wire::new(trickle, Some(params), false);
        let mut plain = Vec::new();
        block_on(server.read_to_end(&mut plain)).unwrap();
        plain
    }

    #[test]
    fn messages_survive_compression_at_any_read_size() {
        let key = Some([0x12, 0x34, 0x56, 0x78]);
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i} ").into_bytes())
            .collect();
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let messages: Vec<(u8, Vec<u8>)> = vec![
            (1, b"hello".to_vec()),
            (1, Vec::new()),
            (2, noise),
            (9, b"ping".to_vec()),
            (1, text),
            (2, vec![0; 300_000]),
            (1, b"end".to_vec()),
        ];
        let sent: Vec<Vec<u8>> = messages
            .iter()
            .map(|(opcode, payload)| frame(FIN | opcode, payload, key))
            .collect();
        for params in [
            Params {
                send_window_bits: 15,
                send_no_context: false,
            },
            Params {
                send_window_bits: 9,
                send_no_context: true,
            },
            Params {
                send_window_bits: 8,
                send_no_context: false,
            },
        ] {
            for step in [1, 7, 4096, READ] {
                if step == 1 && params.send_window_bits == 15 {
                    // Byte by byte once is enough (slow in a debug build).
                    continue;
                }
                let plain = round_trip(params, &sent, step);
                // Uncompressed messages pass as they were sent.
                let max = if params.send_window_bits < 9 {
                    usize::MAX
                } else {
                    CHUNK
                };
                assert_eq!(messages_in(&plain, max), messages, "{params:?} step {step}");
            }
        }
    }

    #[test]
    fn a_fragmented_compressed_message_is_inflated_whole() {
        // A peer's message compressed once and split over three frames,
        // RSV1 on the first only, with a ping between them.
        let mut deflate = Deflate::new(6, false, 15);
        let message = b"fragments of one compressed message, ".repeat(500);
        let compressed = compress(&mut deflate, &message).unwrap();
        let third = compressed.len() / 3;
        let key = Some([1, 2, 3, 4]);
        let mut wire = frame(RSV1 | 0x01, &compressed[..third], key);
        wire.extend(frame(FIN | 0x09, b"p", key));
        wire.extend(frame(0x00, &compressed[third..2 * third], key));
        wire.extend(frame(FIN, &compressed[2 * third..], key));
        let params = Params {
            send_window_bits: 15,
            send_no_context: false,
        };
        let mut server = Wire::new(
            Trickle {
                data: wire,
                at: 0,
                step: 5,
            },
            Some(params),
            false,
        );
        let mut plain = Vec::new();
        block_on(server.read_to_end(&mut plain)).unwrap();
        let messages = messages_in(&plain, CHUNK);
        assert_eq!(messages, vec![(9, b"p".to_vec()), (1, message)]);
    }

    #[test]
    fn invalid_compressed_frames_reach_tungstenite_refused() {
        let key = Some([0; 4]);
        let params = Params {
            send_window_bits: 15,
            send_no_context: false,
        };
        for wire in [
            // Not deflate data.
            frame(FIN | RSV1 | 0x02, &[0xff; 4], key),
            // RSV1 on a continuation frame.
            [
                frame(RSV1 | 0x02, &[0x00], key),
                frame(FIN | RSV1, &[0x00], key),
            ]
            .concat(),
        ] {
            let mut server = Wire::new(
                Trickle {
                    data: wire,
                    at: 0,
                    step: READ,
                },
                Some(params),
                false,
            );
            let mut plain = Vec::new();
            block_on(server.read_to_end(&mut plain)).unwrap();
            let last = Header::parse(&plain[plain.len() - 6..]).unwrap();
            assert_ne!(last.first & RSV2, 0, "tungstenite gets a frame it refuses");
        }
    }

    proptest::proptest! {
        /// Whatever a peer sends, read in pieces of any size, the codec
        /// never panics and ends (tungstenite judges what it hands on).
        #[test]
        fn any_peer_bytes_are_read_without_panic(
            chunks in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                0..24,
            ),
            compressed_start in proptest::prelude::any::<bool>(),
            step in 1usize..64,
        ) {
            let mut data = Vec::new();
            if compressed_start {
                // Make a compressed message likely: FIN + RSV1 + text, masked.
                data.extend_from_slice(&[FIN | RSV1 | 0x01, 0x80 | 0x14, 1, 2, 3, 4]);
            }
            for chunk in chunks {
                data.extend(chunk);
            }
            let params = Params { send_window_bits: 15, send_no_context: false };
            let mut server = Wire::new(Trickle { data, at: 0, step }, Some(params), false);
            let mut plain = Vec::new();
            let _ = block_on(server.read_to_end(&mut plain));
        }

        /// Valid compressed traffic with bytes flipped: no panic either.
        #[test]
        fn corrupted_compressed_traffic_is_read_without_panic(
            messages in proptest::collection::vec(
                proptest::collection::vec(0u8..4, 0..300),
                1..6,
            ),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1u8..=255), 1..8),
            step in 1usize..512,
        ) {
            let params = Params { send_window_bits: 15, send_no_context: false };
            let mut client = Wire::new(Cursor::new(Vec::new()), Some(params), true);
            block_on(async {
                for message in &messages {
                    let sent = frame(FIN | 0x02, message, Some([9, 8, 7, 6]));
                    client.write_all(&sent).await.unwrap();
                }
                client.flush().await.unwrap();
            });
            let mut data = client.io.into_inner();
            for (at, bits) in flips {
                let len = data.len();
                if let Some(byte) = data.get_mut(at % len.max(1)) {
                    *byte ^= bits;
                }
            }
            let mut server = Wire::new(Trickle { data, at: 0, step }, Some(params), false);
            let mut plain = Vec::new();
            let _ = block_on(server.read_to_end(&mut plain));
        }
    }
}
