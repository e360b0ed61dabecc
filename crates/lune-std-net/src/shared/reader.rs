//! Incoming bodies, for the client's responses and the server's requests
//! alike: ONE path ([`IncomingBody`]) that takes hyper's frames (driving the
//! connection's tasks where a client needs it), decompresses as they
//! arrive, holds the body to its limit and, on a server, ends a body that
//! stalls; ONE error type ([`IncomingError`]) for what goes wrong. The
//! body is read whole ([`IncomingBody::read_to_end`]) or piece by piece by a
//! script through a [`BodyReader`]: `read(size?)`, `readToEnd()`,
//! `close()`.

use std::{rc::Rc, sync::Arc, time::Duration};

use async_lock::Mutex;
use bytes::{Bytes, BytesMut};
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
use crate::rt::ConnTasks;

/// What went wrong with an incoming body.
#[derive(Debug)]
pub(crate) enum BodyFault {
    /// Larger than the limit (`maxBodySize`), received or decoded.
    TooLarge { limit: usize },
    /// The connection broke before the body ended.
    Broken(hyper::Error),
    /// No byte came for this long (a server's `bodyTimeout`).
    Stalled(Duration),
    /// The bytes are not valid for the body's `Content-Encoding`.
    Decompress(std::io::Error),
}

/// What a body is, for messages: `response body from <url>`, `request
/// body`. Made per body, so it holds the URL as it is and formats only
/// when a message needs it.
#[derive(Debug, Clone)]
pub(crate) struct BodyName {
    what: &'static str,
    from: Option<Arc<str>>,
}

impl BodyName {
    pub(crate) fn response(url: &url::Url) -> Self {
        Self {
            what: "response body",
            from: Some(Arc::from(url.as_str())),
        }
    }

    /// A body with no origin to name (`request body`, `redirect body`).
    pub(crate) fn plain(what: &'static str) -> Self {
        Self { what, from: None }
    }

    /// The name with a capital first letter, to start a sentence.
    fn capitalised(&self) -> String {
        let mut name = self.to_string();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        name
    }
}

impl std::fmt::Display for BodyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{} from {from}", self.what),
            None => f.write_str(self.what),
        }
    }
}

/// An incoming body's failure, with what the body was and its encoding,
/// for the message.
#[derive(Debug)]
pub(crate) struct IncomingError {
    pub(crate) fault: BodyFault,
    body: BodyName,
    encoding: Option<&'static str>,
}

impl std::fmt::Display for IncomingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = &self.body;
        match &self.fault {
            BodyFault::TooLarge { limit } => write!(
                f,
                "{} is larger than the limit of {limit} bytes (maxBodySize)",
                body.capitalised()
            ),
            BodyFault::Broken(e) => write!(
                f,
                "Connection broken while reading the {body}: {}",
                lune_utils::describe_error(e)
            ),
            BodyFault::Stalled(after) => write!(
                f,
                "The {body} stalled: no data for {} seconds (bodyTimeout)",
                after.as_secs_f64()
            ),
            BodyFault::Decompress(e) => match self.encoding {
                Some(encoding) => write!(f, "Failed to decompress the '{encoding}' {body}: {e}"),
                None => write!(f, "Failed to decompress the {body}: {e}"),
            },
        }
    }
}

impl std::error::Error for IncomingError {}

/// One incoming body as it arrives.
pub(crate) struct IncomingBody {
    /// `None` once the body ended or failed.
    incoming: Option<Incoming>,
    /// The tasks of the client connection that delivers it, driven while a
    /// frame is awaited; `None` on a server, whose connection is a task.
    tasks: Option<Rc<ConnTasks>>,
    /// Boxed: a decoder's state is large, and the body moves with the
    /// futures that read it.
    decoder: Option<Box<Decoder>>,
    encoding: Option<&'static str>,
    limit: Option<usize>,
    /// Bytes so far, as received and as decoded, against the limit.
    received: usize,
    decoded: usize,
    stall: Option<Duration>,
    body: BodyName,
}

impl IncomingBody {
    /// `body` names it in errors (`"response body from <url>"`); `format`
    /// is the `Content-Encoding` to undo; `limit` holds both the bytes
    /// received and the bytes decoded; `stall` ends a body with no data for
    /// that long.
    pub(crate) fn new(
        incoming: Incoming,
        tasks: Option<Rc<ConnTasks>>,
        format: Option<CompressionFormat>,
        limit: Option<usize>,
        stall: Option<Duration>,
        body: BodyName,
    ) -> Result<Self, IncomingError> {
        let encoding = format.map(CompressionFormat::header_name);
        let decoder = format
            .map(|f| Decoder::new(f, limit).map(Box::new))
            .transpose()
            .map_err(|e| IncomingError {
                fault: decode_fault(e),
                body: body.clone(),
                encoding,
            })?;
        Ok(Self {
            incoming: Some(incoming),
            tasks,
            decoder,
            encoding,
            limit,
            received: 0,
            decoded: 0,
            stall,
            body,
        })
    }

    fn error(&self, fault: BodyFault) -> IncomingError {
        IncomingError {
            fault,
            body: self.body.clone(),
            encoding: self.encoding,
        }
    }

    fn over_limit(&self, count: usize) -> Result<(), BodyFault> {
        match self.limit {
            Some(limit) if count > limit => Err(BodyFault::TooLarge { limit }),
            _ => Ok(()),
        }
    }

    /// The next decoded bytes (never empty), or `None` at the end. After an
    /// error the body is over: the connection is left half-read.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, IncomingError> {
        let next = self.next_inner().await;
        if next.is_err() {
            self.incoming = None;
            self.tasks = None;
        }
        next.map_err(|fault| self.error(fault))
    }

    async fn next_inner(&mut self) -> Result<Option<Bytes>, BodyFault> {
        loop {
            let (tasks, stall) = (self.tasks.clone(), self.stall);
            let Some(incoming) = self.incoming.as_mut() else {
                return Ok(None);
            };
            let frame = async {
                match &tasks {
                    Some(tasks) => tasks.drive(incoming.frame()).await,
                    None => incoming.frame().await,
                }
            };
            let frame = match stall {
                Some(stall) => future::or(async { Some(frame.await) }, async {
                    async_io::Timer::after(stall).await;
                    None
                })
                .await
                .ok_or(BodyFault::Stalled(stall))?,
                None => frame.await,
            };
            let decoded = match frame {
                None => {
                    self.incoming = None;
                    self.tasks = None;
                    // An empty body is empty in any encoding (a HEAD
                    // response, a 204 that names one).
                    match &mut self.decoder {
                        Some(decoder) if self.received > 0 => {
                            decoder.finish().map_err(decode_fault)?
                        }
                        _ => return Ok(None),
                    }
                }
                Some(Err(e)) => return Err(BodyFault::Broken(e)),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.received += data.len();
                    self.over_limit(self.received)?;
                    match &mut self.decoder {
                        Some(decoder) => decoder.feed(data).await.map_err(decode_fault)?,
                        None => data,
                    }
                }
            };
            self.decoded += decoded.len();
            self.over_limit(self.decoded)?;
            if !decoded.is_empty() {
                return Ok(Some(decoded));
            }
        }
    }

    /// The rest of the body, whole.
    pub(crate) async fn read_to_end(&mut self) -> Result<Bytes, IncomingError> {
        let Some(first) = self.next().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.next().await? else {
            return Ok(first);
        };
        let mut all = BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.next().await? {
            all.extend_from_slice(&more);
        }
        Ok(all.freeze())
    }
}

fn decode_fault(e: DecodeError) -> BodyFault {
    match e {
        DecodeError::TooLarge { limit } => BodyFault::TooLarge { limit },
        DecodeError::Invalid(e) => BodyFault::Decompress(e),
    }
}

/// Called once with how the body ended: read to its end (`Ok`; a client
/// gives the connection back to its pool) or failed (a server answers 413
/// or 408 for it). Dropped uncalled when the body is closed unfinished.
pub(crate) type OnEnd = Box<dyn FnOnce(Result<(), &IncomingError>)>;

struct State {
    body: IncomingBody,
    /// Decoded bytes not yet handed out.
    pending: Bytes,
    on_end: Option<OnEnd>,
}

struct Inner {
    state: Mutex<State>,
    closed: Signal,
    /// What the body is (`response body from <url>`), for `tostring`.
    name: BodyName,
}

/// A body a script reads piece by piece. Clones read the same body.
#[derive(Clone)]
pub(crate) struct BodyReader {
    inner: Rc<Inner>,
}

impl BodyReader {
    pub(crate) fn new(body: IncomingBody, on_end: Option<OnEnd>) -> Self {
        Self {
            inner: Rc::new(Inner {
                name: body.body.clone(),
                state: Mutex::new(State {
                    body,
                    pending: Bytes::new(),
                    on_end,
                }),
                closed: Signal::default(),
            }),
        }
    }

    /// The next bytes, at most `size`; nil at the end or once closed.
    pub(crate) async fn read(&self, size: usize) -> Result<Option<Bytes>, IncomingError> {
        let mut state = self.inner.state.lock().await;
        if state.pending.is_empty() {
            if self.inner.closed.is_set() {
                return Ok(None);
            }
            let next = future::or(async { Some(state.body.next().await) }, async {
                self.inner.closed.wait().await;
                None
            })
            .await;
            match next {
                None => return Ok(None),
                Some(Err(e)) => {
                    if let Some(on_end) = state.on_end.take() {
                        on_end(Err(&e));
                    }
                    return Err(e);
                }
                Some(Ok(None)) => {
                    if let Some(on_end) = state.on_end.take() {
                        on_end(Ok(()));
                    }
                    return Ok(None);
                }
                Some(Ok(Some(bytes))) => state.pending = bytes,
            }
        }
        let n = size.min(state.pending.len());
        Ok(Some(state.pending.split_to(n)))
    }

    /// Discards the rest; a pending `read` returns nil.
    pub(crate) async fn close(&self) {
        self.inner.closed.fire();
        let mut state = self.inner.state.lock().await;
        state.body.incoming = None;
        state.body.tasks = None;
        state.on_end = None;
        state.pending = Bytes::new();
    }
}

impl LuaUserData for BodyReader {
    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("read", |lua, this, size: Option<LuaValue>| {
            lune_utils::wake_on_drop(async move {
                let size = options::size(&size.unwrap_or(LuaValue::Nil), "size")?
                    .unwrap_or(options::DEFAULT_READ_SIZE);
                match this.read(size).await.map_err(LuaError::external)? {
                    Some(bytes) => Ok(LuaValue::String(lua.create_string(&bytes)?)),
                    None => Ok(LuaValue::Nil),
                }
            })
        });
        methods.add_async_method("readToEnd", |lua, this, ()| {
            lune_utils::wake_on_drop(async move {
                let mut all = Vec::new();
                while let Some(bytes) = this.read(usize::MAX).await.map_err(LuaError::external)? {
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
            Ok(format!("BodyReader({})", this.inner.name))
        });
    }
}
