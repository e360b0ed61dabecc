//! The `BodyReader` a streamed response (`options.stream = true`) gives:
//! `read(size?)`, `readToEnd()`, `close()`. Bytes are decompressed as they
//! arrive and held to `options.maxBodySize`; a body read to its end gives its
//! connection back to the pool, a closed or broken one does not.

use std::rc::Rc;

use async_lock::Mutex;
use bytes::Bytes;
use futures_lite::future;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use lune_std_serde::compression::CompressionFormat;
use mlua::prelude::*;

use super::{
    decode::{DecodeError, Decoder},
    options,
    signal::Signal,
};
use crate::{client::Lease, rt::ConnTasks};

/// `read()` without a size returns at most this much.
const DEFAULT_READ_SIZE: usize = 64 * 1024;

struct State {
    incoming: Option<Incoming>,
    /// The tasks of the connection that delivers it.
    tasks: Option<Rc<ConnTasks>>,
    decoder: Option<Decoder>,
    /// Decoded bytes not yet handed out.
    pending: Bytes,
    /// Decoded bytes so far, against the limit.
    received: usize,
    limit: Option<usize>,
    lease: Option<Lease>,
}

struct Inner {
    state: Mutex<State>,
    closed: Signal,
    url: String,
}

/// A response body read piece by piece.
pub(crate) struct BodyReader {
    inner: Rc<Inner>,
}

impl BodyReader {
    pub(crate) fn new(
        incoming: Incoming,
        tasks: Rc<ConnTasks>,
        format: Option<CompressionFormat>,
        limit: Option<usize>,
        lease: Option<Lease>,
        url: &url::Url,
    ) -> std::io::Result<Self> {
        let decoder = format
            .map(|f| Decoder::new(f, limit))
            .transpose()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            inner: Rc::new(Inner {
                state: Mutex::new(State {
                    incoming: Some(incoming),
                    tasks: Some(tasks),
                    decoder,
                    pending: Bytes::new(),
                    received: 0,
                    limit,
                    lease,
                }),
                closed: Signal::default(),
                url: url.to_string(),
            }),
        })
    }

    fn too_large(&self, limit: usize) -> LuaError {
        LuaError::runtime(format!(
            "Response body from {} is larger than the limit of {limit} bytes (maxBodySize)",
            self.inner.url
        ))
    }

    /// Decodes one piece of the body into `state.pending`, or ends it.
    async fn take_in(&self, state: &mut State, data: Option<Bytes>) -> LuaResult<()> {
        let decoded = match (&mut state.decoder, data) {
            (Some(decoder), Some(data)) => decoder.feed(data).await,
            (Some(decoder), None) => decoder.finish(),
            (None, Some(data)) => Ok(data),
            (None, None) => Ok(Bytes::new()),
        };
        let decoded = decoded.map_err(|e| match e {
            DecodeError::TooLarge { limit } => self.too_large(limit),
            DecodeError::Invalid(e) => LuaError::runtime(format!(
                "Failed to decompress the response body from {}: {e}",
                self.inner.url
            )),
        })?;
        state.received += decoded.len();
        if let Some(limit) = state.limit
            && state.received > limit
        {
            return Err(self.too_large(limit));
        }
        state.pending = decoded;
        Ok(())
    }

    /// The next bytes, at most `size`; nil at the end or once closed.
    pub(crate) async fn read(&self, size: usize) -> LuaResult<Option<Bytes>> {
        let mut state = self.inner.state.lock().await;
        loop {
            if !state.pending.is_empty() {
                let n = size.min(state.pending.len());
                return Ok(Some(state.pending.split_to(n)));
            }
            if self.inner.closed.is_set() {
                return Ok(None);
            }
            let Some(tasks) = state.tasks.clone() else {
                return Ok(None);
            };
            let Some(incoming) = state.incoming.as_mut() else {
                return Ok(None);
            };
            // The connection's tasks run while the frame is awaited.
            let next = tasks.drive(incoming.frame());
            let frame = future::or(async { Some(next.await) }, async {
                self.inner.closed.wait().await;
                None
            })
            .await;
            let result = match frame {
                None => return Ok(None),
                Some(None) => {
                    state.incoming = None;
                    state.tasks = None;
                    let ended = self.take_in(&mut state, None).await;
                    if ended.is_ok()
                        && let Some(lease) = state.lease.take()
                    {
                        lease.release();
                    }
                    ended
                }
                Some(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.take_in(&mut state, Some(data)).await,
                    Err(_) => Ok(()),
                },
                Some(Some(Err(e))) => Err(LuaError::runtime(format!(
                    "Connection broken while reading the response body from {}: {e}",
                    self.inner.url
                ))),
            };
            if let Err(e) = result {
                // The connection is left half-read: it is not reused.
                state.incoming = None;
                state.tasks = None;
                state.lease = None;
                return Err(e);
            }
        }
    }

    /// Discards the rest; a pending `read` returns nil.
    pub(crate) async fn close(&self) {
        self.inner.closed.fire();
        let mut state = self.inner.state.lock().await;
        state.incoming = None;
        state.tasks = None;
        state.lease = None;
        state.pending = Bytes::new();
    }
}

impl LuaUserData for BodyReader {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("read", |lua, this, size: Option<LuaValue>| {
            lune_utils::wake_on_drop(async move {
                let size = options::size(&size.unwrap_or(LuaValue::Nil), "size")?
                    .unwrap_or(DEFAULT_READ_SIZE);
                match this.read(size).await? {
                    Some(bytes) => Ok(LuaValue::String(lua.create_string(&bytes)?)),
                    None => Ok(LuaValue::Nil),
                }
            })
        });
        methods.add_async_method("readToEnd", |lua, this, ()| {
            lune_utils::wake_on_drop(async move {
                let mut all = Vec::new();
                while let Some(bytes) = this.read(usize::MAX).await? {
                    all.extend_from_slice(&bytes);
                }
                lua.create_string(&all)
            })
        });
        methods.add_async_method("close", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                this.close().await;
                Ok(())
            })
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(format!("BodyReader({})", this.inner.url))
        });
    }
}
