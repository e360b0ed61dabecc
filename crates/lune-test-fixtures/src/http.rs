//! The httpbin-like service behind `LUNE_TEST_HTTP` and `LUNE_TEST_HTTPS`.

use std::{
    convert::Infallible,
    io::{self, Write},
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use async_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{
            CloseFrame, Role,
            frame::{
                Frame as WsFrame,
                coding::{CloseCode, Data, OpCode},
            },
        },
    },
};
use bytes::Bytes;
use futures_lite::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};

use crate::rt::{self, FromHyper};

pub(crate) type Body = BoxBody<Bytes, io::Error>;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A fresh id for an accepted connection.
pub(crate) fn connection_id() -> u64 {
    NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed)
}

/// What the service knows about the connection a request came on.
#[derive(Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(b) = decoded {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn compress(kind: &str, data: &[u8]) -> io::Result<Vec<u8>> {
    match kind {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        "deflate-raw" => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data)?;
            }
            Ok(out)
        }
        "zstd" => zstd::encode_all(data, 3),
        _ => Ok(data.to_vec()),
    }
}

/// Serves one request.
pub(crate) async fn handle(
    request: Request<Incoming>,
    conn: ConnInfo,
) -> Result<Response<Body>, Infallible> {
    Ok(route(request, conn)
        .await
        .unwrap_or_else(|e| respond(StatusCode::BAD_REQUEST, e.to_string())))
}

async fn route(request: Request<Incoming>, conn: ConnInfo) -> io::Result<Response<Body>> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    if path.starts_with("/ws/") {
        return Ok(websocket(request, &path, &query));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |i: usize| segments.get(i).and_then(|s| s.parse::<u64>().ok());
    let response = match segments.as_slice() {
        ["echo"] => echo(request, conn).await?,
        ["echo", "raw"] => {
            let body = request
                .into_body()
                .collect()
                .await
                .map_err(io::Error::other)?
                .to_bytes();
            let mut response = Response::new(full(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        ["status", _] => {
            match number(1).and_then(|n| StatusCode::from_u16(u16::try_from(n).ok()?).ok()) {
                Some(status) => respond(status, Bytes::new()),
                None => respond(StatusCode::BAD_REQUEST, "bad status"),
            }
        }
        [kind @ ("gzip" | "deflate" | "deflate-raw" | "br" | "zstd" | "identity")] => {
            let json = format!("{{\"compressed\":\"{kind}\"}}");
            let packed = compress(kind, json.as_bytes())?;
            let len = packed.len();
            let mut response = Response::new(full(packed));
            let map = response.headers_mut();
            map.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            let encoding = match *kind {
                "gzip" => Some("gzip"),
                "deflate" | "deflate-raw" => Some("deflate"),
                "br" => Some("br"),
                "zstd" => Some("zstd"),
                _ => None,
            };
            if let Some(encoding) = encoding {
                map.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            response
        }
        ["redirect" | "absolute-redirect", _] => {
            let n = number(1).unwrap_or(0);
            if n == 0 {
                respond(StatusCode::OK, "redirected")
            } else {
                let kind = segments[0];
                let location = if kind == "absolute-redirect" {
                    let host = request
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("127.0.0.1");
                    let scheme = if conn.tls { "https" } else { "http" };
                    format!("{scheme}://{host}/{kind}/{}", n - 1)
                } else {
                    format!("/{kind}/{}", n - 1)
                };
                redirect(StatusCode::FOUND, &location)
            }
        }
        ["redirect-to"] => {
            let url = query_param(&query, "url").unwrap_or_else(|| "/".into());
            let status = query_param(&query, "status")
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::FOUND);
            // Keep the request body unread but drained, so keep-alive works.
            let _ = request.into_body().collect().await;
            redirect(status, &url)
        }
        ["bytes", _] => {
            let n = number(1).unwrap_or(0) as usize;
            respond(StatusCode::OK, pattern(n))
        }
        ["chunked", _] => {
            let n = number(1).unwrap_or(0) as usize;
            let data = Bytes::from(pattern(n));
            let chunks: Vec<Result<Frame<Bytes>, io::Error>> = (0..n)
                .step_by(16 * 1024)
                .map(|start| Ok(Frame::data(data.slice(start..(start + 16 * 1024).min(n)))))
                .collect();
            Response::new(BodyExt::boxed(StreamBody::new(futures_lite::stream::iter(
                chunks,
            ))))
        }
        ["slow", _] => {
            async_io::Timer::after(Duration::from_millis(number(1).unwrap_or(0))).await;
            respond(StatusCode::OK, "slow")
        }
        ["headers", "repeat"] => {
            let mut response = respond(StatusCode::OK, "repeat");
            let map = response.headers_mut();
            map.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
            map.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
            map.insert("x-single", HeaderValue::from_static("one"));
            response
        }
        ["conn"] => respond(StatusCode::OK, conn.id.to_string()),
        _ => respond(StatusCode::NOT_FOUND, "no such fixture endpoint"),
    };
    Ok(response)
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut response = respond(status, Bytes::new());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn echo(request: Request<Incoming>, conn: ConnInfo) -> io::Result<Response<Body>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let entry = headers
            .entry(name.as_str().to_string())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = entry {
            values.push(
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into(),
            );
        }
    }
    let version = match parts.version {
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "bodyLength": body.len(),
        "version": version,
        "connection": conn.id,
        "proxied": crate::proxy::is_proxied(conn.peer),
    });
    let mut response = Response::new(full(json.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `/ws/echo`, `/ws/greet`, `/ws/ping-close?code=N`, `/ws/drop`,
/// `/ws/fragmented` (one text message in three frames, with a ping between
/// them) and `/ws/ping` (pings, and says `pong received` once the client
/// answered).
fn websocket(mut request: Request<Incoming>, path: &str, query: &str) -> Response<Body> {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return respond(StatusCode::BAD_REQUEST, "not a WebSocket request");
    };
    // Pick the first offered subprotocol, so clients can see negotiation work.
    let protocol = request
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_string());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let endpoint = path.to_string();
    let close_code = query_param(query, "code").and_then(|c| c.parse::<u16>().ok());
    rt::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(FromHyper(upgraded), Role::Server, None).await;
        match endpoint.as_str() {
            "/ws/drop" => drop(ws),
            "/ws/fragmented" => {
                let frames = [
                    WsFrame::message(
                        Bytes::from_static(b"hello "),
                        OpCode::Data(Data::Text),
                        false,
                    ),
                    WsFrame::ping(Bytes::from_static(b"mid-message")),
                    WsFrame::message(
                        Bytes::from_static(b"fragmented "),
                        OpCode::Data(Data::Continue),
                        false,
                    ),
                    WsFrame::message(
                        Bytes::from_static(b"world"),
                        OpCode::Data(Data::Continue),
                        true,
                    ),
                ];
                for frame in frames {
                    if ws.send(Message::Frame(frame)).await.is_err() {
                        return;
                    }
                }
                while let Some(Ok(_)) = ws.next().await {}
            }
            "/ws/ping" => {
                if ws
                    .send(Message::Ping(Bytes::from_static(b"check")))
                    .await
                    .is_err()
                {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Pong(payload) = message {
                        let reply = if payload.as_ref() == b"check" {
                            "pong received"
                        } else {
                            "wrong pong payload"
                        };
                        let _ = ws.send(Message::text(reply)).await;
                    }
                }
            }
            "/ws/ping-close" => {
                let _ = ws
                    .send(Message::Ping(Bytes::from_static(b"are you there")))
                    .await;
                let frame = close_code.map(|code| CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                });
                let _ = ws.send(Message::Close(frame)).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
            other => {
                if other == "/ws/greet" && ws.send(Message::text("hello")).await.is_err() {
                    return;
                }
                while let Some(Ok(message)) = ws.next().await {
                    let reply = match message {
                        Message::Text(_) | Message::Binary(_) => message,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut response = respond(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
    let map = response.headers_mut();
    map.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    map.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        map.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        map.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}
