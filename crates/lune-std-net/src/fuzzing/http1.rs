//! Raw HTTP/1.1 bytes from an in-memory client against `net.serve`'s own
//! service and connection wiring (`server::serve_io`, as the accept loop
//! runs it).

use std::{
    cell::Cell,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use http::Request;
use hyper::body::Incoming;
use mlua::prelude::*;
use mlua_luau_scheduler::{LuaSpawnExt, Scheduler};

use crate::server::{
    self, Lifetime, Shutdown, Timeouts, config::ServeConfig, request::Peer as Remote,
    service::Service,
};

/// A handler that touches every part of the request, and a WebSocket handler
/// that echoes until the peer leaves.
const SERVER: &str = r#"
return {
    handleRequest = function(request)
        local count = 0
        for _ in request.headers do
            count += 1
        end
        for _ in request.query do
            count += 1
        end
        return {
            status = 200,
            headers = { ["x-count"] = count, ["x-method"] = request.method },
            body = request.path .. "\n" .. request.body,
        }
    end,
    handleWebSocket = function(socket)
        while true do
            local message = socket:next()
            if message == nil then
                break
            end
            pcall(socket.send, socket, message)
        end
    end,
    maxBodySize = 65536,
    headerTimeout = 2,
}
"#;

/// How long one input may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// What the in-memory client knows of the server: how many requests are
/// being answered, and who to wake when the last answer is out.
/// (Shared with the connection's I/O, which hyper needs to be `Send`.)
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

/// Ends one request of [`InFlight`] when dropped, answered or abandoned.
struct Answering(Arc<InFlight>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        if let Some(waker) = lune_utils::lock(&self.0.waker).take() {
            waker.wake();
        }
    }
}

/// `net.serve`'s service, counting the requests it is answering.
#[derive(Clone)]
struct Counted {
    service: Service,
    in_flight: Arc<InFlight>,
}

impl hyper::service::Service<Request<Incoming>> for Counted {
    type Response = <Service as hyper::service::Service<Request<Incoming>>>::Response;
    type Error = <Service as hyper::service::Service<Request<Incoming>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.in_flight.count.fetch_add(1, Ordering::SeqCst);
        let answering = Answering(self.in_flight.clone());
        let future = self.service.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(answering);
            response
        })
    }
}

/// How long a patient client waits for its answers once it has sent
/// everything: a request whose body was cut short is never answered, so the
/// client cannot wait for ever (the server's own timeouts are not what this
/// fuzzes).
const PATIENCE: Duration = Duration::from_millis(10);

/// A client connection in memory: it sends the fuzzer's bytes in chunks,
/// yielding between them, then ends its side, either at once or (like most
/// clients) once every request it sent is answered, for up to [`PATIENCE`].
/// Whatever the server writes is dropped.
struct Peer {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    yield_next: bool,
    /// Set to wait for answers before the end of file.
    patient: Option<Arc<InFlight>>,
    /// Started when everything is sent and answers are still due.
    patience: Option<async_io::Timer>,
    /// The timer fired (it fires once): the client waits no more.
    out_of_patience: bool,
}

impl futures_lite::AsyncRead for Peer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.yield_next {
            self.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let len = self.chunk.min(buf.len()).min(self.data.len() - self.pos);
        if len == 0
            && !self.out_of_patience
            && let Some(in_flight) = self.patient.clone()
            && let mut waker = lune_utils::lock(&in_flight.waker)
            && in_flight.count.load(Ordering::SeqCst) > 0
        {
            let timer = self
                .patience
                .get_or_insert_with(|| async_io::Timer::after(PATIENCE));
            if Pin::new(timer).poll(cx).is_pending() {
                *waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            self.out_of_patience = true;
        }
        buf[..len].copy_from_slice(&self.data[self.pos..self.pos + len]);
        self.pos += len;
        self.yield_next = len > 0;
        Poll::Ready(Ok(len))
    }
}

impl futures_lite::AsyncWrite for Peer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Raw HTTP/1.1 bytes from a client, served by `net.serve`'s own service and
/// connection settings. The first byte picks how the rest is split into reads
/// (its low 7 bits) and whether the client waits for its answers before it
/// ends its side (the high bit). The connection must end, without a panic,
/// within [`HANG`].
pub fn http1_request(data: &[u8]) {
    let Some((&split, request)) = data.split_first() else {
        return;
    };
    let lua = Lua::new();
    let scheduler = Scheduler::new(lua.clone());
    let config: LuaValue = lua.load(SERVER).eval().expect("the server config");
    let config = ServeConfig::from_lua(config, &lua).expect("a valid server config");
    let timeouts = Timeouts::of(&config);
    let in_flight = Arc::new(InFlight::default());
    let service = Counted {
        service: Service::new(lua.clone(), config, Lifetime::default()).for_connection(
            Remote::new(Some(SocketAddr::from(([127, 0, 0, 1], 1))), None),
            None,
        ),
        in_flight: in_flight.clone(),
    };
    let peer = Cell::new(Some(Peer {
        data: request.to_vec(),
        pos: 0,
        chunk: usize::from(split & 0x7f) + 1,
        yield_next: false,
        patient: (split & 0x80 != 0).then_some(in_flight),
        patience: None,
        out_of_patience: false,
    }));
    // Connections are spawned from a Luau thread, as the accept loop does.
    let accept = lua
        .create_function(move |lua, ()| {
            let (Some(peer), service) = (peer.take(), service.clone()) else {
                return Ok(());
            };
            lua.spawn_local(async move {
                let io = smol_hyper::rt::FuturesIo::new(peer);
                let shutdown = Shutdown::default();
                // Garbage from the peer fails the connection: expected here,
                // what is fuzzed is that it ends, and ends without a panic.
                let _failed = server::serve_io(io, service, timeouts, None, None, &shutdown).await;
            });
            Ok(())
        })
        .expect("a function");
    scheduler.push_thread_front(accept, ()).expect("a thread");
    let finished = async_io::block_on(futures_lite::future::or(
        async {
            scheduler.run().await;
            true
        },
        async {
            async_io::Timer::after(HANG).await;
            false
        },
    ));
    assert!(finished, "the connection did not end within {HANG:?}");
}
