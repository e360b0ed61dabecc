//! Bodies as Luau gives them (`string | buffer`, binary-safe) and as they
//! go out on the wire.

use bytes::Bytes;
use mlua::prelude::*;

/// Reads an optional `string | buffer` body. `what` names it in errors.
pub(crate) fn body_from_lua(value: LuaValue, what: &str) -> LuaResult<Option<Bytes>> {
    match value {
        LuaValue::Nil => Ok(None),
        other => bytes_from_lua(&other, what).map(Some),
    }
}

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

/// Bodies up to this size are copied out of Lua at once and sent in one
/// frame; larger strings are sent in chunks of this size.
const CHUNK: usize = 64 * 1024;

/// A body on its way out. A large Lua string is read in chunks as the peer
/// takes them, so responses that share one string share its memory instead
/// of each pinning a copy until a slow peer has read it all.
pub(crate) enum OutBody {
    Bytes(Option<Bytes>),
    LuaString { string: LuaString, sent: usize },
}

impl OutBody {
    pub(crate) fn empty() -> Self {
        Self::Bytes(None)
    }

    /// A `string | buffer` body. A buffer is copied (scripts may change it);
    /// a string is immutable and read in place.
    pub(crate) fn from_lua(value: &LuaValue, what: &str) -> LuaResult<Self> {
        match value {
            LuaValue::String(s) if s.as_bytes().len() > CHUNK => Ok(Self::LuaString {
                string: s.clone(),
                sent: 0,
            }),
            other => Ok(Self::from(bytes_from_lua(other, what)?)),
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
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let chunk = match self.get_mut() {
            Self::Bytes(bytes) => bytes.take(),
            Self::LuaString { string, sent } => {
                let all = string.as_bytes();
                let end = all.len().min(*sent + CHUNK);
                let chunk = (*sent < end).then(|| Bytes::copy_from_slice(&all[*sent..end]));
                *sent = end;
                chunk
            }
        };
        std::task::Poll::Ready(chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(bytes) => bytes.is_none(),
            Self::LuaString { string, sent } => *sent >= string.as_bytes().len(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let left = match self {
            Self::Bytes(bytes) => bytes.as_ref().map_or(0, Bytes::len),
            Self::LuaString { string, sent } => string.as_bytes().len().saturating_sub(*sent),
        };
        hyper::body::SizeHint::with_exact(left as u64)
    }
}
