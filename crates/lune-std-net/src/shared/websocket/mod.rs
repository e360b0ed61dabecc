//! The WebSocket object Luau sees, for client and server sockets alike.
//!
//! The socket is split in a receiving and a sending half, each behind its own
//! async lock, so one Luau thread may wait in `next` while another calls
//! `send`. `close` wakes a waiting `next` through an event.

use std::{
    cell::{Cell, RefCell},
    rc::{Rc, Weak},
    time::{Duration, Instant},
};

use async_lock::{Mutex, MutexGuard};
use async_tungstenite::{
    WebSocketReceiver, WebSocketSender, WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};
use bytes::Bytes;
use event_listener::Event;
use futures_lite::{AsyncRead, AsyncWrite, StreamExt};
use mlua::prelude::*;

use super::{body::bytes_from_lua, options::Options, signal::Signal};

pub(crate) mod deflate;

pub(crate) use deflate::Wire;

/// Wraps the socket userdata in the object scripts see. Lune 0.10 called
/// `socket.send(msg)`, `socket.next()` and `socket.close()` with a dot, Lune
/// 0.11 with a colon; the closures accept both by dropping a leading self.
const OBJECT_LUAU: &str = r#"
local socket = ...
local object = {}
local function withoutSelf(first, ...)
	if first == object then
		return ...
	end
	return first, ...
end
object.send = function(...)
	return socket:send(withoutSelf(...))
end
object.next = function()
	return socket:next()
end
object.close = function(...)
	return socket:close(withoutSelf(...))
end
return setmetatable(object, {
	__index = function(_, key)
		if key == "closeCode" or key == "protocol" then
			return socket[key]
		end
		return nil
	end,
	__tostring = function()
		return tostring(socket)
	end,
	__metatable = "The metatable is locked",
})
"#;

const OBJECT_REGISTRY_KEY: &str = "lune-net-websocket-object";

/// The Luau object for `socket`: `closeCode`, `protocol`, `send`, `next`, `close`.
pub(crate) fn into_object<S: Transport>(lua: &Lua, socket: WebSocket<S>) -> LuaResult<LuaTable> {
    let make = if let LuaValue::Function(f) = lua.named_registry_value(OBJECT_REGISTRY_KEY)? {
        f
    } else {
        let f = lua
            .load(OBJECT_LUAU)
            .set_name("=net.websocket")
            .into_function()?;
        lua.set_named_registry_value(OBJECT_REGISTRY_KEY, &f)?;
        f
    };
    make.call(lua.create_userdata(socket)?)
}

/// The largest message accepted before the socket closes with 1009, unless
/// `maxMessageSize` says otherwise.
pub(crate) const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// How much tungstenite reads from the connection at once.
const READ_BUFFER: usize = 16 * 1024;

/// What a script may set for a socket, client (`net.socket` options) or
/// server (`net.serve` config) alike.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    /// `maxMessageSize`: larger messages close the socket with 1009.
    pub(crate) max_message_size: usize,
    /// `pingInterval`: while the socket is open, a peer silent this long is
    /// pinged, and one that stays silent as long again is dropped (1006).
    pub(crate) ping_interval: Option<Duration>,
    /// permessage-deflate: offered by a client (`compress`), accepted by a
    /// server (`wsCompress`).
    pub(crate) compress: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_message_size: MAX_MESSAGE_SIZE,
            ping_interval: None,
            compress: false,
        }
    }
}

impl Settings {
    /// `maxMessageSize`, `pingInterval` and compression (its key is
    /// `compress_key`: a serve config's `compress` is for HTTP) from a config table.
    pub(crate) fn from_options(fields: &Options<'_>, compress_key: &str) -> LuaResult<Self> {
        Ok(Self {
            max_message_size: fields.size("maxMessageSize")?.unwrap_or(MAX_MESSAGE_SIZE),
            ping_interval: fields.seconds("pingInterval")?,
            compress: fields.flag(compress_key)?.unwrap_or(false),
        })
    }

    /// The socket over `io` (the upgraded connection) for `role`,
    /// compressing with `deflate` when the handshake negotiated it.
    pub(crate) async fn stream<S: Transport>(
        &self,
        io: S,
        role: Role,
        deflate: Option<deflate::Params>,
    ) -> WebSocketStream<Wire<S>> {
        let wire = Wire::new(io, deflate, role == Role::Client);
        WebSocketStream::from_raw_socket(wire, role, Some(self.config())).await
    }

    /// tungstenite's limits: a frame or message past `max_message_size` is
    /// refused from its header, before its payload is read. Reads take at
    /// most [`READ_BUFFER`] at a time: tungstenite zeroes that much before
    /// every read, which at its default (128 KiB) cost more than the rest
    /// of a small message's round trip.
    pub(crate) fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
            .read_buffer_size(READ_BUFFER)
    }
}

/// What every socket needs from its transport.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Transport for T {}

struct Inner<S> {
    sender: Mutex<Option<WebSocketSender<S>>>,
    receiver: Mutex<Option<WebSocketReceiver<S>>>,
    close_code: Cell<Option<u16>>,
    closed: Signal,
    protocol: Option<String>,
    /// When the peer last sent a frame of any kind.
    last_heard: Cell<Instant>,
    /// When a keep-alive ping went out that the peer has not answered yet.
    ping_sent: Cell<Option<Instant>>,
    /// A message the keep-alive read while no `next` was waiting; while it
    /// is here, nothing more is read (memory stays bounded).
    pending: RefCell<Option<(Bytes, bool)>>,
    /// Notified when `next` takes `pending`.
    taken: Event,
    /// Fired once every handle is gone; see [`Owner`].
    abandoned: Rc<Signal>,
    /// `pingInterval`, when the keep-alive cannot run in the background
    /// (this library inside another runtime's `block_on`): it then runs
    /// while `next` waits, as in Lune.
    inline_keep_alive: Option<Duration>,
}

/// What one frame read from the peer was.
enum Frame {
    Message(Bytes, bool),
    /// A ping, a pong or a raw frame: not a message.
    Control,
    /// The socket is closed (by either side, or broken).
    Ended,
}

/// A WebSocket as Luau sees it: `closeCode`, `protocol`, `next`, `send`, `close`.
pub(crate) struct WebSocket<S> {
    inner: Rc<Inner<S>>,
    /// Shared by every handle; the keep-alive's has none.
    owner: Option<Rc<Owner>>,
}

/// Fires `abandoned` once no handle is left (the script let go of the
/// socket): the keep-alive then lets go too, and the connection closes.
struct Owner(Rc<Signal>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.fire();
    }
}

impl<S: Transport> WebSocket<S> {
    /// With `pingInterval`, the keep-alive runs for as long as the socket
    /// is open, whatever the script does meanwhile, as a background task
    /// that keeps no script running.
    pub(crate) fn new(
        stream: WebSocketStream<S>,
        protocol: Option<String>,
        settings: &Settings,
    ) -> Self {
        let (sender, receiver) = stream.split();
        let abandoned = Rc::new(Signal::default());
        let owner = Rc::new(Owner(abandoned.clone()));
        let mut inner = Inner {
            sender: Mutex::new(Some(sender)),
            receiver: Mutex::new(Some(receiver)),
            close_code: Cell::new(None),
            closed: Signal::default(),
            protocol,
            last_heard: Cell::new(Instant::now()),
            ping_sent: Cell::new(None),
            pending: RefCell::new(None),
            taken: Event::new(),
            abandoned,
            inline_keep_alive: None,
        };
        let Some(interval) = settings.ping_interval else {
            return Self {
                inner: Rc::new(inner),
                owner: Some(owner),
            };
        };
        let inner = Rc::new_cyclic(|weak: &Weak<Inner<S>>| {
            if lune_utils::background::spawn(keep_alive(weak.clone(), interval)).is_err() {
                inner.inline_keep_alive = Some(interval);
            }
            inner
        });
        Self {
            inner,
            owner: Some(owner),
        }
    }

    /// A second handle to the same socket.
    pub(crate) fn handle(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            owner: self.owner.clone(),
        }
    }

    /// Marks the socket closed with `code` unless it already was, and wakes `next`.
    fn mark_closed(&self, code: u16) {
        if self.inner.close_code.get().is_none() {
            self.inner.close_code.set(Some(code));
        }
        self.inner.closed.fire();
    }

    /// Sends a close frame with `code` (a failure to send means the peer is gone).
    pub(crate) async fn close(&self, code: u16, reason: &str) {
        let already = self.inner.close_code.get().is_some();
        self.mark_closed(code);
        if already {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        if let Some(sender) = self.inner.sender.lock().await.as_mut() {
            // A peer that is gone cannot be told; the socket is closed anyway.
            let _ = sender.send(Message::Close(Some(frame))).await;
        }
    }

    /// Drops the connection: after the peer closed, or after a protocol error
    /// where the peer's remaining data must not be read.
    async fn drop_transport(&self) {
        self.inner.sender.lock().await.take();
        self.inner.receiver.lock().await.take();
    }

    /// Marks the socket closed with 1006 (gone without a close frame) and
    /// drops the connection.
    async fn lost(&self) {
        self.mark_closed(1006);
        self.drop_transport().await;
    }

    /// Reads one frame under `receiver` (the lock of the receiving half)
    /// and deals with what it means; `Ended` when the socket is closed.
    async fn read_frame(
        &self,
        mut receiver: MutexGuard<'_, Option<WebSocketReceiver<S>>>,
    ) -> Frame {
        let Some(stream) = receiver.as_mut() else {
            return Frame::Ended;
        };
        let received = futures_lite::future::or(async { Some(stream.next().await) }, async {
            self.inner.closed.wait().await;
            None
        })
        .await;
        let Some(received) = received else {
            return Frame::Ended;
        };
        if let Some(Ok(_)) = &received {
            self.inner.last_heard.set(Instant::now());
            self.inner.ping_sent.set(None);
        }
        match received {
            Some(Ok(Message::Text(text))) => Frame::Message(Bytes::from(text), false),
            Some(Ok(Message::Binary(data))) => Frame::Message(data, true),
            // Pings are answered by tungstenite itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Frame::Control,
            Some(Ok(Message::Close(frame))) => {
                self.mark_closed(frame.map_or(1005, |f| u16::from(f.code)));
                // Let tungstenite send its close reply, then hang up.
                futures_lite::future::or(
                    async {
                        // Whatever comes after a close frame is not read.
                        let _ = stream.next().await;
                    },
                    async {
                        async_io::Timer::after(Duration::from_secs(1)).await;
                    },
                )
                .await;
                drop(receiver);
                self.drop_transport().await;
                Frame::Ended
            }
            Some(Err(tungstenite::Error::Capacity(_))) => {
                drop(receiver);
                self.close(1009, "Message too big").await;
                self.drop_transport().await;
                Frame::Ended
            }
            Some(Err(_)) | None => {
                drop(receiver);
                self.lost().await;
                Frame::Ended
            }
        }
    }

    /// The next text or binary message and whether it is binary; `None`
    /// once the socket is closed.
    async fn next_message(&self) -> LuaResult<Option<(Bytes, bool)>> {
        let next = async {
            loop {
                if let Some(message) = self.take_pending() {
                    return Some(message);
                }
                if self.inner.close_code.get().is_some() {
                    return None;
                }
                let receiver = self.inner.receiver.lock().await;
                // The keep-alive may have read one while this waited for the lock.
                if self.inner.pending.borrow().is_some() {
                    continue;
                }
                match self.read_frame(receiver).await {
                    Frame::Message(data, binary) => return Some((data, binary)),
                    Frame::Control => {}
                    Frame::Ended => return None,
                }
            }
        };
        let Some(interval) = self.inner.inline_keep_alive else {
            return Ok(next.await);
        };
        // No background here: the keep-alive runs while this waits.
        Ok(futures_lite::future::or(next, async {
            keep_alive(Rc::downgrade(&self.inner), interval).await;
            None
        })
        .await)
    }

    fn take_pending(&self) -> Option<(Bytes, bool)> {
        let message = self.inner.pending.borrow_mut().take();
        if message.is_some() {
            self.inner.taken.notify(usize::MAX);
        }
        message
    }

    /// Reads frames while no `next` does, so that pongs (and the peer's
    /// pings) are seen by a script that only sends or sleeps; a message is
    /// kept for the next `next`, and reading pauses until it is taken.
    /// Ends once the socket is closed.
    async fn read_while_idle(&self) {
        loop {
            if self.inner.pending.borrow().is_some() {
                let listener = self.inner.taken.listen();
                if self.inner.pending.borrow().is_some() {
                    listener.await;
                }
                continue;
            }
            if self.inner.close_code.get().is_some() {
                return;
            }
            let receiver = self.inner.receiver.lock().await;
            if self.inner.pending.borrow().is_some() {
                continue;
            }
            match self.read_frame(receiver).await {
                Frame::Message(data, binary) => {
                    *self.inner.pending.borrow_mut() = Some((data, binary));
                }
                Frame::Control => {}
                Frame::Ended => return,
            }
        }
    }

    /// Sends a keep-alive ping; false when it could not go out within
    /// `interval`.
    async fn ping(&self, interval: Duration) -> bool {
        self.inner.ping_sent.set(Some(Instant::now()));
        let ping = async {
            match self.inner.sender.lock().await.as_mut() {
                Some(sink) => sink.send(Message::Ping(Bytes::new())).await.is_ok(),
                None => false,
            }
        };
        futures_lite::future::or(ping, async {
            async_io::Timer::after(interval).await;
            false
        })
        .await
    }

    async fn send_message(&self, message: Message) -> LuaResult<()> {
        if let Some(code) = self.inner.close_code.get() {
            return Err(LuaError::runtime(format!(
                "WebSocket is closed (close code {code}) - cannot send"
            )));
        }
        let mut sender = self.inner.sender.lock().await;
        let Some(sink) = sender.as_mut() else {
            return Err(LuaError::runtime("WebSocket is closed - cannot send"));
        };
        if let Err(e) = sink.send(message).await {
            drop(sender);
            self.lost().await;
            return Err(LuaError::runtime(format!(
                "WebSocket closed while sending: {e}"
            )));
        }
        Ok(())
    }
}

/// `pingInterval`: a peer silent for the interval is pinged, and one that
/// stays silent as long again is dropped (closed with 1006). Runs until the
/// socket is closed or gone; meanwhile it reads frames whenever no `next`
/// does. A message kept unread for the script counts as the peer being
/// heard: it is sending, and what it sent after is not read yet.
async fn keep_alive<S: Transport>(socket: Weak<Inner<S>>, interval: Duration) {
    let Some(abandoned) = socket.upgrade().map(|inner| inner.abandoned.clone()) else {
        return;
    };
    futures_lite::future::or(keep_checking(socket, interval), abandoned.wait()).await;
}

async fn keep_checking<S: Transport>(socket: Weak<Inner<S>>, interval: Duration) {
    let socket = || {
        socket
            .upgrade()
            .map(|inner| WebSocket { inner, owner: None })
    };
    loop {
        let due = {
            let Some(socket) = socket() else { return };
            if socket.inner.close_code.get().is_some() {
                return;
            }
            let inner = &socket.inner;
            inner
                .ping_sent
                .get()
                .unwrap_or_else(|| inner.last_heard.get())
                + interval
        };
        let Some(current) = socket() else { return };
        let reading = async {
            current.read_while_idle().await;
            true
        };
        let closed = futures_lite::future::or(reading, async {
            async_io::Timer::at(due).await;
            false
        })
        .await;
        drop(current);
        let Some(socket) = socket() else { return };
        let inner = &socket.inner;
        if closed || inner.close_code.get().is_some() {
            return;
        }
        if inner.pending.borrow().is_some() {
            inner.last_heard.set(Instant::now());
            inner.ping_sent.set(None);
            continue;
        }
        let unanswered = inner
            .ping_sent
            .get()
            .is_some_and(|sent| sent.elapsed() >= interval);
        let ping_due =
            inner.ping_sent.get().is_none() && inner.last_heard.get().elapsed() >= interval;
        if unanswered || (ping_due && !socket.ping(interval).await) {
            socket.lost().await;
            return;
        }
    }
}

impl<S: Transport> LuaUserData for WebSocket<S> {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("closeCode", |_, this| Ok(this.inner.close_code.get()));
        fields.add_field_method_get("protocol", |_, this| Ok(this.inner.protocol.clone()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        // A message and whether it came as a binary frame; a single nil once closed.
        methods.add_async_method("next", |lua, this, ()| {
            lune_utils::wake_on_drop(async move {
                let mut values = LuaMultiValue::new();
                match this.next_message().await? {
                    Some((bytes, binary)) => {
                        values.push_back(LuaValue::String(lua.create_string(&bytes)?));
                        values.push_back(LuaValue::Boolean(binary));
                    }
                    None => values.push_back(LuaValue::Nil),
                }
                Ok(values)
            })
        });
        methods.add_async_method(
            "send",
            |_, this, (message, as_binary): (LuaValue, Option<bool>)| {
                lune_utils::wake_on_drop(async move {
                    let data = match message {
                        LuaValue::Nil => Bytes::new(),
                        other => bytes_from_lua(&other, "WebSocket message")?,
                    };
                    let message = if as_binary.unwrap_or(false) {
                        Message::Binary(data)
                    } else {
                        // Text frames must be UTF-8; anything else goes out as binary.
                        match tungstenite::Utf8Bytes::try_from(data.clone()) {
                            Ok(text) => Message::Text(text),
                            Err(_) => Message::Binary(data),
                        }
                    };
                    this.send_message(message).await
                })
            },
        );
        methods.add_async_method("close", |_, this, code: Option<LuaValue>| {
            lune_utils::wake_on_drop(async move {
                let code = match code {
                    None | Some(LuaValue::Nil) => 1000,
                    Some(LuaValue::Integer(n)) if (1000..=4999).contains(&n) => n as u16,
                    Some(LuaValue::Number(n))
                        if n.fract() == 0.0 && (1000.0..=4999.0).contains(&n) =>
                    {
                        n as u16
                    }
                    Some(other) => {
                        return Err(LuaError::runtime(format!(
                            "Invalid close code {} - expected a whole number from 1000 to 4999",
                            other
                                .to_string()
                                .unwrap_or_else(|_| lune_utils::type_name(&other).to_string())
                        )));
                    }
                };
                this.close(code, "").await;
                Ok(())
            })
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(match this.inner.close_code.get() {
                Some(code) => format!("WebSocket(closed, {code})"),
                None => "WebSocket(open)".to_string(),
            })
        });
    }
}
