//! Bodies as Luau gives them (`string | buffer`, or a function returning the
//! next chunk) and as they go out on the wire.
//!
//! Every outgoing body is an [`OutBody`]: small ones are complete bytes; a
//! large string or a chunk function is read on the Luau thread by a pump task
//! that hands one chunk at a time to the connection through a channel of
//! one, so the function runs again only once the connection took the last
//! chunk (a slow peer slows it down) and stops when the peer is gone.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use async_channel::{Receiver, Sender};
use bytes::Bytes;
use futures_lite::Stream;
use hyper::body::{Frame, SizeHint};
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

/// Strings up to this size are copied out of Lua at once and sent in one
/// frame; larger strings and chunk functions go out in chunks of this size.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Reads a `string | buffer` value. `what` names it in errors.
pub(crate) fn bytes_from_lua(value: &LuaValue, what: &str) -> LuaResult<Bytes> {
    match value {
        LuaValue::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
        LuaValue::Buffer(b) => Ok(Bytes::from(b.to_vec())),
        other => Err(LuaError::runtime(format!(
            "Invalid {what} - expected a string or buffer, got {}",
            lune_utils::type_name(other)
        ))),
    }
}

/// A body as a script gave it, before it goes out.
#[derive(Clone)]
pub(crate) enum BodySource {
    Empty,
    Bytes(Bytes),
    /// A string too large to copy per request: read in chunks.
    String(LuaString),
    /// `() -> (string | buffer)?`, called for each chunk until nil.
    Function(LuaFunction),
}

impl BodySource {
    /// `nil`, a string, a buffer (copied: scripts may change it) or a function.
    pub(crate) fn from_lua(value: LuaValue, what: &str) -> LuaResult<Self> {
        match value {
            LuaValue::Nil => Ok(Self::Empty),
            LuaValue::Function(f) => Ok(Self::Function(f)),
            LuaValue::String(s) if s.as_bytes().len() > CHUNK => Ok(Self::String(s)),
            other => bytes_from_lua(&other, what)
                .map_err(|_| {
                    LuaError::runtime(format!(
                        "Invalid {what} - expected a string, buffer or function, got {}",
                        lune_utils::type_name(&other)
                    ))
                })
                .map(Self::Bytes),
        }
    }

    /// True for a function, whose chunks can be sent only once.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Self::Function(_))
    }

    /// Starts sending: the body to hand to hyper. `declared` is a
    /// `Content-Length` the script set, which a function's chunks must then
    /// add up to. `what` names the body in errors.
    /// Errors of a server's body function are reported on stderr (a
    /// client's come back to the script instead).
    /// Without a Luau state (a request made from Rust), a string is copied
    /// whole and a function cannot be called.
    pub(crate) fn into_body(
        self,
        lua: Option<&Lua>,
        declared: Option<u64>,
        what: &'static str,
        report_errors: bool,
    ) -> OutBody {
        let Some(lua) = lua else {
            return match self {
                Self::Empty => OutBody::empty(),
                Self::Bytes(bytes) => OutBody::from(bytes),
                Self::String(string) => OutBody::from(Bytes::copy_from_slice(&string.as_bytes())),
                Self::Function(_) => {
                    let (sender, receiver) = async_channel::bounded(1);
                    // A new channel of one has room: this cannot fail.
                    let _ = sender.try_send(Err(BodyError(format!(
                        "A {what} function needs a Luau thread to run on"
                    ))));
                    OutBody::chunks(receiver, None)
                }
            };
        };
        match self {
            Self::Empty => OutBody::empty(),
            Self::Bytes(bytes) => OutBody::from(bytes),
            Self::String(string) => {
                let length = string.as_bytes().len() as u64;
                let (sender, receiver) = async_channel::bounded(1);
                lua.spawn_local(pump_string(string, sender));
                OutBody::chunks(receiver, Some(length))
            }
            Self::Function(function) => {
                let (sender, receiver) = async_channel::bounded(1);
                lua.spawn_local(pump_function(function, sender, what, report_errors));
                OutBody::chunks(receiver, declared)
            }
        }
    }
}

async fn pump_string(string: LuaString, sender: Sender<Result<Bytes, BodyError>>) {
    let length = string.as_bytes().len();
    let mut sent = 0;
    while sent < length {
        let end = length.min(sent + CHUNK);
        let chunk = Bytes::copy_from_slice(&string.as_bytes()[sent..end]);
        sent = end;
        if sender.send(Ok(chunk)).await.is_err() {
            return;
        }
    }
}

async fn pump_function(
    function: LuaFunction,
    sender: Sender<Result<Bytes, BodyError>>,
    what: &'static str,
    report_errors: bool,
) {
    loop {
        // The peer is gone: the function is not called again.
        if sender.is_closed() {
            return;
        }
        let chunk = match function.call_async::<LuaValue>(()).await {
            Ok(LuaValue::Nil) => return,
            Ok(value) => bytes_from_lua(&value, what).map_err(|e| {
                BodyError(format!(
                    "The {what} function returned something that is not a chunk: {e}"
                ))
            }),
            Err(e) => Err(BodyError(e.to_string())),
        };
        let failed = chunk.is_err();
        if report_errors && let Err(e) = &chunk {
            crate::report::error(&format!(
                "net.serve: the {what} function errored, the body was aborted:\n{e}"
            ));
        }
        if matches!(&chunk, Ok(bytes) if bytes.is_empty()) {
            continue;
        }
        // Waits until the connection took the previous chunk.
        if sender.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// Why a streamed body was aborted: the script's error, as text (with its
/// stack), so that it can cross to the connection's thread.
#[derive(Debug, Clone)]
pub(crate) struct BodyError(pub(crate) String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// A body on its way out: complete bytes, or chunks from a pump.
pub(crate) enum OutBody {
    Bytes(Option<Bytes>),
    Chunks {
        receiver: Pin<Box<Receiver<Result<Bytes, BodyError>>>>,
        /// Bytes still to come when the length is known.
        remaining: Option<u64>,
    },
}

impl OutBody {
    pub(crate) fn empty() -> Self {
        Self::Bytes(None)
    }

    pub(crate) fn chunks(
        receiver: Receiver<Result<Bytes, BodyError>>,
        length: Option<u64>,
    ) -> Self {
        Self::Chunks {
            receiver: Box::pin(receiver),
            remaining: length,
        }
    }
}

impl From<Bytes> for OutBody {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes((!bytes.is_empty()).then_some(bytes))
    }
}

impl From<&str> for OutBody {
    fn from(text: &str) -> Self {
        Self::from(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl hyper::body::Body for OutBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Chunks {
                receiver,
                remaining,
            } => match receiver.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(left) = remaining {
                        let len = chunk.len() as u64;
                        if len > *left {
                            return Poll::Ready(Some(Err(BodyError(
                                "The body is longer than its Content-Length".to_string(),
                            ))));
                        }
                        *left -= len;
                    }
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => match remaining {
                    Some(left) if *left > 0 => Poll::Ready(Some(Err(BodyError(
                        "The body is shorter than its Content-Length".to_string(),
                    )))),
                    _ => Poll::Ready(None),
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Bytes(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, Bytes::len) as u64),
            Self::Chunks {
                remaining: Some(left),
                ..
            } => SizeHint::with_exact(*left),
            Self::Chunks { .. } => SizeHint::default(),
        }
    }
}
