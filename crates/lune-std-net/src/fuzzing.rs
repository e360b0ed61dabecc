//! Entry points for the `cargo fuzz` targets in `fuzz/`, built only with the
//! `fuzzing` feature. Not part of the library's API.
//!
//! Each function takes the fuzzer's raw bytes, reads the inputs it needs from
//! them, runs the crate's own code and asserts the properties that must hold
//! (the same ones the property tests check). A panic here is a finding.

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

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use mlua::prelude::*;
use mlua_luau_scheduler::{LuaSpawnExt, Scheduler};

use crate::{
    client::redirect::{self, Policy},
    server::{
        config::ServeConfig,
        response::{lua_number, status_code},
        service::Service,
    },
    shared::headers,
};

/// Reads fuzzer bytes as a sequence of small inputs; past the end, zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        first
    }

    /// Up to `max` bytes, the count given by the next byte.
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = (usize::from(self.byte()) % (max + 1)).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    fn f64(&mut self) -> f64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.byte();
        }
        f64::from_le_bytes(raw)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `net.urlEncode`/`net.urlDecode` and URL parsing: binary data round-trips,
/// UTF-8 rules hold, `parse` accepts only the listed schemes with a host.
pub fn url(data: &[u8]) {
    const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
    let mut input = Input(data);
    let flags = input.byte();
    let binary = flags & 1 == 1;
    let schemes = &SCHEMES[..=usize::from(flags >> 1) % SCHEMES.len()];
    let payload = input.rest();
    let utf8 = std::str::from_utf8(payload).is_ok();

    match crate::url::encode(payload, binary) {
        Ok(encoded) => {
            assert!(binary || utf8, "encoded invalid UTF-8 without binary");
            let decoded = crate::url::decode(encoded.as_bytes(), binary).expect("decodes");
            assert_eq!(decoded, payload, "encode then decode round-trips");
        }
        Err(e) => assert!(!binary && !utf8 && e.contains("UTF-8"), "{e}"),
    }

    let raw = crate::url::decode(payload, true).expect("binary decoding never fails");
    assert!(raw.len() <= payload.len(), "decoding never grows the input");
    match crate::url::decode(payload, false) {
        Ok(text) => assert_eq!(text, raw, "UTF-8 decoding is binary decoding"),
        Err(e) => assert!(
            std::str::from_utf8(&raw).is_err() && e.contains("UTF-8"),
            "{e}"
        ),
    }

    let text = String::from_utf8_lossy(payload);
    match crate::url::parse(&text, schemes) {
        Ok(url) => {
            assert!(schemes.contains(&url.scheme()), "accepted {url}");
            assert!(
                url.host_str().is_some_and(|h| !h.is_empty()),
                "no host: {url}"
            );
        }
        Err(e) => assert!(e.starts_with("Invalid url '"), "{e}"),
    }
}

/// A key or value of a script's table, read from fuzzer bytes.
fn lua_value(lua: &Lua, input: &mut Input<'_>, kind: u8, depth: u8) -> LuaValue {
    match kind % 8 {
        0 => LuaValue::Number(input.f64()),
        1 => LuaValue::Integer(i64::from(input.byte()) - 128),
        2 => LuaValue::Boolean(input.byte() & 1 == 1),
        3 if depth < 2 => {
            let table = lua.create_table().expect("a table");
            for _ in 0..input.byte() % 4 {
                let kind = input.byte();
                let value = lua_value(lua, input, kind, depth + 1);
                table.raw_push(value).expect("push");
            }
            LuaValue::Table(table)
        }
        _ => LuaValue::String(lua.create_string(input.bytes(24)).expect("a string")),
    }
}

/// A clean refusal: a runtime error that names what was wrong.
fn assert_clean(error: &LuaError, prefix: &str) {
    match error {
        LuaError::RuntimeError(message) => {
            assert!(message.starts_with(prefix), "{message}");
        }
        other => panic!("not a clean error: {other:?}"),
    }
}

thread_local! {
    /// One Luau state for the targets that need no scheduler: a new one per
    /// input would cost more than the code under test.
    static LUA: Lua = Lua::new();
}

/// Header and query tables: any table a script builds is read or refused
/// cleanly; what is read writes back and reads again unchanged.
pub fn headers(data: &[u8]) {
    LUA.with(|lua| headers_with(lua, data));
}

fn headers_with(lua: &Lua, data: &[u8]) {
    let mut input = Input(data);
    let table = lua.create_table().expect("a table");
    while !input.is_empty() {
        let kinds = input.byte();
        // Keys are strings three times in four; NaN is no key at all.
        let key_kind = if kinds & 0xc0 == 0 { kinds } else { 7 };
        let key = match lua_value(lua, &mut input, key_kind, 0) {
            LuaValue::Number(n) if n.is_nan() => continue,
            key => key,
        };
        let value = lua_value(lua, &mut input, kinds >> 3, 0);
        table.raw_set(key, value).expect("set");
    }

    let pairs = match headers::read_multi_map(Some(table.clone()), "query") {
        Ok(pairs) => pairs,
        Err(e) => {
            assert_clean(&e, "Invalid query ");
            return;
        }
    };
    let owned: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect();
    let written =
        headers::write_multi_map(lua, owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .expect("writes");
    let again = headers::read_multi_map(Some(written), "query").expect("reads what it wrote");
    let group = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        let mut grouped = std::collections::BTreeMap::<Vec<u8>, Vec<Vec<u8>>>::new();
        for (k, v) in pairs {
            grouped.entry(k.clone()).or_default().push(v.clone());
        }
        grouped
    };
    let again: Vec<(Vec<u8>, Vec<u8>)> = again
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect();
    assert_eq!(
        group(&owned),
        group(&again),
        "write then read keeps every value in order"
    );

    match headers::read_headers(Some(table)) {
        Ok(list) => {
            assert_eq!(list.len(), owned.len(), "one header per value");
            let mut map = HeaderMap::new();
            for (name, value) in list {
                map.append(name, value);
            }
            let written = headers::write_headers(lua, &map).expect("writes");
            let read = headers::read_headers(Some(written)).expect("reads what it wrote");
            let mut again = HeaderMap::new();
            for (name, value) in read {
                again.append(name, value);
            }
            for name in map.keys() {
                assert!(
                    map.get_all(name).iter().eq(again.get_all(name).iter()),
                    "values of {name} keep their order"
                );
            }
        }
        Err(e) => assert_clean(&e, "Invalid header "),
    }
}

/// The redirect policy: any Location and status is followed only to an
/// http(s) URL with a host, 301–303 become GET, credentials stay behind
/// across origins, and no more than `max` hops are followed.
pub fn redirect(data: &[u8]) {
    const CURRENT: &[&str] = &[
        "http://a/",
        "https://a/x/y?q=1",
        "http://a:8080/",
        "https://b.example/",
        "http://127.0.0.1/",
        "http://[::1]:1/",
    ];
    let mut input = Input(data);
    let flags = input.byte();
    let policy = Policy {
        follow: flags & 1 == 1,
        max: u32::from(flags >> 1) % 8,
    };
    let followed = u32::from(input.byte() % 10);
    let status = 100 + u16::from_le_bytes([input.byte(), input.byte()]) % 900;
    let status = StatusCode::from_u16(status).expect("a status from 100 to 999");
    let current =
        url::Url::parse(CURRENT[usize::from(input.byte()) % CURRENT.len()]).expect("a url");
    // Bytes that cannot be a header value never reach the policy.
    let location = HeaderValue::from_bytes(input.rest()).ok();
    let usable = location.as_ref().is_some_and(|l| l.to_str().is_ok());
    let wanted = policy.follow && redirect::is_redirect(status) && usable;

    match redirect::next_hop(policy, followed, &current, status, location.as_ref()) {
        Ok(Some(hop)) => {
            assert!(
                wanted && followed < policy.max,
                "followed {followed} of {}",
                policy.max
            );
            assert!(matches!(hop.url.scheme(), "http" | "https"), "{}", hop.url);
            assert!(
                hop.url.host_str().is_some_and(|h| !h.is_empty()),
                "{}",
                hop.url
            );
            assert_eq!(hop.to_get, (301..=303).contains(&status.as_u16()));
            assert_eq!(hop.cross_origin, hop.url.origin() != current.origin());
            let mut method = Method::PUT;
            let mut body = Some(());
            let mut list = vec![
                (header::AUTHORIZATION, HeaderValue::from_static("secret")),
                (header::COOKIE, HeaderValue::from_static("secret")),
                (header::HOST, HeaderValue::from_static("a")),
                (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                (
                    HeaderName::from_static("x-other"),
                    HeaderValue::from_static("kept"),
                ),
            ];
            redirect::apply(&hop, &mut method, &mut body, &mut list);
            let has = |name: &HeaderName| list.iter().any(|(n, _)| n == name);
            assert_eq!(has(&header::AUTHORIZATION), !hop.cross_origin);
            assert_eq!(has(&header::COOKIE), !hop.cross_origin);
            assert_eq!(has(&header::HOST), !hop.cross_origin);
            assert_eq!(has(&header::CONTENT_TYPE), !hop.to_get);
            assert!(has(&HeaderName::from_static("x-other")));
            assert_eq!(method == Method::GET, hop.to_get);
            assert_eq!(body.is_none(), hop.to_get);
        }
        Ok(None) => assert!(!wanted, "a usable redirect was not followed"),
        Err(redirect::RedirectError::TooMany { max, .. }) => {
            assert!(wanted && followed >= max && max == policy.max);
        }
        Err(e) => {
            assert!(wanted && followed < policy.max, "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

/// Status parsing: any number or string a handler returns as `status` is
/// accepted only as a whole number from 200 to 999.
pub fn status(data: &[u8]) {
    let acceptable = |n: f64| n.is_finite() && n.fract() == 0.0 && (200.0..=999.0).contains(&n);
    let check = |n: f64| match status_code(n) {
        Ok(status) => {
            assert!(acceptable(n), "accepted {n}");
            assert_eq!(status.as_u16(), n as u16);
        }
        Err(e) => {
            assert!(!acceptable(n), "refused {n}");
            assert_clean(&e, "'status' ");
        }
    };
    let mut input = Input(data);
    check(input.f64());
    let text = LUA.with(|lua| lua.create_string(input.rest()).expect("a string"));
    if let Some(n) = lua_number(&LuaValue::String(text)) {
        check(n);
    }
}

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
        if let Some(waker) = self.0.waker.lock().ok().and_then(|mut w| w.take()) {
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
            && let Ok(mut waker) = in_flight.waker.lock()
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
    let (header_timeout, send_timeout) = (config.header_timeout, config.send_timeout);
    let in_flight = Arc::new(InFlight::default());
    let service = Counted {
        service: Service::new(lua.clone(), config, crate::server::Lifetime::default())
            .for_connection(Some(SocketAddr::from(([127, 0, 0, 1], 1))), None),
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
                // The HTTP/1.1 settings of every served connection.
                let timeouts = crate::server::Timeouts {
                    header: header_timeout,
                    send: send_timeout,
                    idle: None,
                };
                let conn = crate::server::http1_builder(timeouts)
                    .serve_connection(
                        crate::server::PeerIo::new(
                            smol_hyper::rt::FuturesIo::new(peer),
                            send_timeout,
                            None,
                        ),
                        service,
                    )
                    .with_upgrades();
                let _ = conn.await;
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
