//! Body compression, beside the one decoder (`decode.rs`) and over the same
//! base (`lune-std-serde`'s compression code): an outgoing body becomes the
//! same body compressed. A small complete body is compressed at once; a
//! larger one, and every streamed body, goes through a pump that
//! compresses each chunk and flushes it (so each chunk, each Server-Sent
//! Event among them, reaches the peer by itself), moving chunks larger than
//! [`INLINE_LIMIT`] to a blocking thread so the Luau thread never waits on
//! a big one.

use bytes::Bytes;
use http_body_util::BodyExt;
use lune_std_serde::compression::{self, CompressionFormat, Deflater};
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use super::body::{BodyError, OutBody};

/// Input compressed on the Luau thread at once; larger pieces move off it.
const INLINE_LIMIT: usize = 64 * 1024;

/// The level each format is used at for responses: fast settings, as
/// compression runs per response (brotli's 11 would cost far more than the
/// bytes it saves for dynamic content).
fn level(format: CompressionFormat) -> i32 {
    match format {
        CompressionFormat::Brotli => 4,
        CompressionFormat::Zstd => 3,
        _ => 5,
    }
}

/// `body` compressed as `format`.
pub(crate) fn encode(lua: &Lua, body: OutBody, format: CompressionFormat) -> OutBody {
    if let OutBody::Bytes(bytes) = &body {
        let bytes = bytes.as_deref().unwrap_or_default();
        if bytes.len() <= INLINE_LIMIT {
            return match compression::compress(format, bytes, Some(level(format))) {
                Ok(compressed) => OutBody::from(Bytes::from(compressed)),
                Err(e) => failed(&e),
            };
        }
    }
    let (sender, receiver) = async_channel::bounded(1);
    lua.spawn_local(pump(body, format, sender));
    OutBody::chunks(receiver, None)
}

/// A body that fails at once with `e`.
fn failed(e: &std::io::Error) -> OutBody {
    let (sender, receiver) = async_channel::bounded(1);
    // A new channel of one has room: this cannot fail.
    let _ = sender.try_send(Err(compress_failed(e)));
    OutBody::chunks(receiver, None)
}

fn compress_failed(e: &std::io::Error) -> BodyError {
    BodyError(format!("Compressing the body failed: {e}"))
}

async fn pump(
    mut body: OutBody,
    format: CompressionFormat,
    sender: async_channel::Sender<Result<Bytes, BodyError>>,
) {
    let mut deflater = match Deflater::new(format, level(format)) {
        Ok(deflater) => deflater,
        Err(e) => {
            // Whoever still reads the body sees why it failed.
            let _ = sender.send(Err(compress_failed(&e))).await;
            return;
        }
    };
    loop {
        // The peer is gone: nothing more is read or compressed.
        if sender.is_closed() {
            return;
        }
        let out = match body.frame().await {
            None => {
                let last = deflater.finish().map_err(|e| compress_failed(&e));
                // The connection ends either way; a gone peer takes nothing.
                let _ = sender.send(last.map(Bytes::from)).await;
                return;
            }
            Some(Err(e)) => {
                // As above: the body fails for whoever still reads it.
                let _ = sender.send(Err(e)).await;
                return;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let (back, out) = compress(deflater, data).await;
                deflater = back;
                out
            }
        };
        match out {
            Ok(out) if out.is_empty() => {}
            Ok(out) => {
                if sender.send(Ok(Bytes::from(out))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // As above.
                let _ = sender.send(Err(compress_failed(&e))).await;
                return;
            }
        }
    }
}

/// Compresses one piece, on a blocking thread when it is large.
async fn compress(mut deflater: Deflater, data: Bytes) -> (Deflater, std::io::Result<Vec<u8>>) {
    if data.len() <= INLINE_LIMIT {
        let out = deflater.compress(&data);
        return (deflater, out);
    }
    blocking::unblock(move || {
        let out = deflater.compress(&data);
        (deflater, out)
    })
    .await
}
