//! The `EventStream` of `net.sse.connect(url, options?)`: `next()`,
//! `close()` and `lastEventId`. With `reconnect = true`, a dropped stream is
//! reopened after the server's `retry` (default 3 s) with `Last-Event-ID`;
//! HTTP 204 ends it for good.

use std::{cell::RefCell, collections::VecDeque, rc::Rc};

use async_lock::Mutex;
use futures_lite::future;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use mlua::prelude::*;

mod parser;

use self::parser::{Parser, SseEvent};
use super::{
    Client, ClientResponse, ResponseBody,
    config::{RequestConfig, RequestOptions, current_caller},
};
use crate::{
    rt::tls::ClientTls,
    shared::{
        body::BodySource,
        headers,
        options::{self, Options},
        reader::BodyReader,
        signal::Signal,
    },
};

/// `net.sse.connect`'s options.
pub(crate) struct SseConfig {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    last_event_id: Option<String>,
    reconnect: bool,
    tls: ClientTls,
}

impl SseConfig {
    pub(crate) fn from_lua_args(url: LuaValue, options: Option<LuaTable>) -> LuaResult<Self> {
        let mut config = Self {
            url: options::url(&url, "net.sse.connect")?,
            headers: Vec::new(),
            last_event_id: None,
            reconnect: false,
            tls: ClientTls::default(),
        };
        if let Some(options) = options {
            let fields = Options::new(&options);
            config.headers = headers::read_headers(fields.table("headers")?)?;
            config.last_event_id = fields.string("lastEventId")?.map(|s| s.to_string_lossy());
            config.reconnect = fields.flag("reconnect")?.unwrap_or(false);
            config.tls = fields.client_tls("tls")?.unwrap_or_default();
        }
        Ok(config)
    }
}

struct State {
    reader: Option<BodyReader>,
    parser: Parser,
    queue: VecDeque<SseEvent>,
    ended: bool,
}

struct Inner {
    client: Rc<Client>,
    lua: Lua,
    config: SseConfig,
    state: Mutex<State>,
    closed: Signal,
    last_event_id: RefCell<Option<String>>,
}

/// A stream of Server-Sent Events as Luau sees it.
pub(crate) struct EventStream {
    inner: Rc<Inner>,
}

/// Why a (re)connection gave no stream.
enum OpenError {
    /// The request failed (refused, reset, timed out): worth another try.
    Transport(LuaError),
    /// The server answered, but not with an event stream: final.
    Rejected(LuaError),
}

impl From<OpenError> for LuaError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Transport(e) | OpenError::Rejected(e) => e,
        }
    }
}

/// What one (re)connection gave: a reader, or the end (204).
async fn open(inner: &Inner) -> Result<Option<BodyReader>, OpenError> {
    let mut headers = inner.config.headers.clone();
    headers.push((
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    ));
    headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    if let Some(id) = inner.last_event_id.borrow().as_deref()
        && let Ok(value) = HeaderValue::from_str(id)
    {
        headers.push((HeaderName::from_static("last-event-id"), value));
    }
    let config = RequestConfig {
        url: inner.config.url.clone(),
        method: Method::GET,
        query: Vec::new(),
        headers,
        body: BodySource::Empty,
        options: RequestOptions {
            stream: true,
            tls: inner.config.tls.clone(),
            ..RequestOptions::default()
        },
        lua: Some(inner.lua.clone()),
        caller: current_caller(&inner.lua),
        user_agent: super::user_agent(&inner.lua),
    };
    let response: ClientResponse = inner
        .client
        .request(config)
        .await
        .map_err(|e| OpenError::Transport(LuaError::external(e)))?;
    let url = &inner.config.url;
    if response.status == StatusCode::NO_CONTENT {
        return Ok(None);
    }
    if !response.status.is_success() {
        return Err(OpenError::Rejected(LuaError::runtime(format!(
            "Event stream at {url} answered {} - expected 200 with text/event-stream",
            response.status
        ))));
    }
    let content_type = response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
    {
        return Err(OpenError::Rejected(LuaError::runtime(format!(
            "Event stream at {url} answered with content-type '{content_type}' - expected text/event-stream"
        ))));
    }
    match response.body {
        ResponseBody::Stream(reader) => Ok(Some(reader)),
        ResponseBody::Full(_) => Ok(None),
    }
}

/// `net.sse.connect`: opens the stream; errors on a non-event-stream answer.
pub(crate) async fn connect(
    lua: Lua,
    client: Rc<Client>,
    config: SseConfig,
) -> LuaResult<EventStream> {
    let last_event_id = RefCell::new(config.last_event_id.clone());
    let inner = Rc::new(Inner {
        client,
        lua,
        config,
        state: Mutex::new(State {
            reader: None,
            parser: Parser::default(),
            queue: VecDeque::new(),
            ended: false,
        }),
        closed: Signal::default(),
        last_event_id,
    });
    let reader = open(&inner).await?;
    {
        let mut state = inner.state.lock().await;
        state.ended = reader.is_none();
        state.reader = reader;
    }
    Ok(EventStream { inner })
}

impl EventStream {
    async fn next(&self) -> LuaResult<Option<SseEvent>> {
        let inner = &self.inner;
        let mut state = inner.state.lock().await;
        loop {
            if let Some(event) = state.queue.pop_front() {
                return Ok(Some(event));
            }
            if state.ended || inner.closed.is_set() {
                return Ok(None);
            }
            let Some(reader) = state.reader.as_ref() else {
                // Dropped, and reconnecting: wait `retry`, then reopen.
                let delay = state.parser.reconnect_delay();
                let waited = future::or(
                    async {
                        async_io::Timer::after(delay).await;
                        true
                    },
                    async {
                        inner.closed.wait().await;
                        false
                    },
                )
                .await;
                if !waited {
                    return Ok(None);
                }
                match open(inner).await {
                    Ok(Some(reader)) => {
                        state.parser = state.parser.reopened();
                        state.reader = Some(reader);
                    }
                    Ok(None) => state.ended = true,
                    // A server that is down for now: try again later.
                    Err(OpenError::Transport(_)) => {}
                    Err(OpenError::Rejected(e)) => {
                        state.ended = true;
                        return Err(e);
                    }
                }
                continue;
            };
            let read = future::or(
                async { Some(reader.read(options::DEFAULT_READ_SIZE).await) },
                async {
                    inner.closed.wait().await;
                    None
                },
            )
            .await;
            match read {
                None => return Ok(None),
                Some(Ok(Some(bytes))) => {
                    let events = state.parser.feed(&bytes);
                    if let Some(id) = state.parser.last_event_id.clone() {
                        *inner.last_event_id.borrow_mut() = Some(id);
                    }
                    state.queue.extend(events);
                }
                // The stream ended or broke.
                Some(Ok(None) | Err(_)) => {
                    state.reader = None;
                    if !inner.config.reconnect {
                        state.ended = true;
                    }
                }
            }
        }
    }

    async fn close(&self) {
        self.inner.closed.fire();
        let mut state = self.inner.state.lock().await;
        if let Some(reader) = state.reader.take() {
            reader.close().await;
        }
        state.ended = true;
    }
}

impl LuaUserData for EventStream {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("lastEventId", |_, this| {
            Ok(this.inner.last_event_id.borrow().clone())
        });
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("next", |lua, this, ()| {
            lune_utils::wake_on_drop(async move {
                let Some(event) = this.next().await? else {
                    return Ok(LuaValue::Nil);
                };
                let table = lua.create_table_with_capacity(0, 4)?;
                table.raw_set("event", event.event)?;
                table.raw_set("data", event.data)?;
                table.raw_set("id", event.id)?;
                table.raw_set("retry", event.retry)?;
                Ok(LuaValue::Table(table))
            })
        });
        methods.add_async_method("close", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                this.close().await;
                Ok(())
            })
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(format!("EventStream({})", this.inner.config.url))
        });
    }
}
