//! Framing headers a script sets. A complete body's length is known and
//! hyper frames it, so a script's own `Content-Length` or `Transfer-Encoding`
//! could only contradict it and is dropped. A streamed body may declare its
//! length with `Content-Length` (then it is sent with that length and must
//! match it); otherwise it goes out chunked (HTTP/1.1) or in DATA frames.

use http::{HeaderName, HeaderValue, header};
use mlua::prelude::*;

/// Header pairs in the order a script gave them.
pub(crate) type HeaderPairs = Vec<(HeaderName, HeaderValue)>;

/// Removes framing headers from `headers`; returns the `Content-Length` a
/// streamed body declared, if any.
pub(crate) fn take_declared_length(
    headers: HeaderPairs,
    streamed: bool,
) -> LuaResult<(HeaderPairs, Option<u64>)> {
    let mut declared = None;
    let mut kept = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            if streamed {
                let length = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        LuaError::runtime(format!(
                            "Invalid Content-Length header {value:?} - expected a whole number"
                        ))
                    })?;
                declared = Some(length);
            }
        } else if name != header::TRANSFER_ENCODING {
            kept.push((name, value));
        }
    }
    Ok((kept, declared))
}
