//! A forward proxy: absolute-form HTTP requests are forwarded, `CONNECT` is
//! tunnelled. The local address of every outbound connection is recorded, so
//! the fixture servers can tell a proxied peer from a direct one.

use std::{
    collections::HashSet,
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{Mutex, OnceLock},
};

use async_net::TcpStream;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::{
    http::Body,
    rt::{self, FromHyper, HyperIo},
};

fn outbound() -> &'static Mutex<HashSet<SocketAddr>> {
    static SET: OnceLock<Mutex<HashSet<SocketAddr>>> = OnceLock::new();
    SET.get_or_init(Mutex::default)
}

/// True when `peer` is one of the proxy's outbound connections.
pub(crate) fn is_proxied(peer: SocketAddr) -> bool {
    outbound().lock().is_ok_and(|set| set.contains(&peer))
}

async fn connect(authority: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(authority).await?;
    if let Ok(local) = stream.local_addr()
        && let Ok(mut set) = outbound().lock()
    {
        set.insert(local);
    }
    Ok(stream)
}

fn failure(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|n| match n {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// Serves one proxy request.
pub(crate) async fn handle(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(match forward(request).await {
        Ok(response) => response,
        Err(e) => failure(StatusCode::BAD_GATEWAY, e.to_string()),
    })
}

async fn forward(mut request: Request<Incoming>) -> io::Result<Response<Body>> {
    let Some(authority) = request.uri().authority().map(ToString::to_string) else {
        return Ok(failure(
            StatusCode::BAD_REQUEST,
            "proxy requests need an absolute url".into(),
        ));
    };
    if request.method() == http::Method::CONNECT {
        let upstream = connect(&authority).await?;
        let on_upgrade = hyper::upgrade::on(&mut request);
        rt::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let (client_read, client_write) = futures_lite::io::split(FromHyper(upgraded));
                let (up_read, up_write) = futures_lite::io::split(upstream);
                let _ = futures_lite::future::zip(
                    copy_and_close(client_read, up_write),
                    copy_and_close(up_read, client_write),
                )
                .await;
            }
        });
        return Ok(Response::new(
            Full::new(Bytes::new()).map_err(|n| match n {}).boxed(),
        ));
    }
    let upstream = connect(&authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(upstream))
        .await
        .map_err(io::Error::other)?;
    rt::spawn(async move {
        let _ = conn.await;
    });
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string);
    *request.uri_mut() = path.parse().map_err(io::Error::other)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert("x-lune-test-proxy", HeaderValue::from_static("forwarded"));
    Ok(Response::from_parts(
        parts,
        body.map_err(io::Error::other).boxed(),
    ))
}

async fn copy_and_close(
    reader: impl futures_lite::AsyncRead + Unpin,
    mut writer: impl futures_lite::AsyncWrite + Unpin,
) -> io::Result<u64> {
    let copied = futures_lite::io::copy(reader, &mut writer).await;
    let _ = futures_lite::AsyncWriteExt::close(&mut writer).await;
    copied
}
