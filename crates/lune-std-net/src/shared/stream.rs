//! One stream type for every connection, hiding whether TLS is in use and
//! whether the socket is TCP or a Unix domain socket.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use async_net::{TcpStream, unix::UnixStream};
use futures_lite::{AsyncRead, AsyncWrite};

/// A TCP connection, plain or wrapped in TLS (as a client or as a server),
/// or a plain Unix domain socket connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    ClientTls(Box<futures_rustls::client::TlsStream<TcpStream>>),
    ServerTls(Box<futures_rustls::server::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    /// The TCP socket underneath, for socket options; `None` for Unix sockets.
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(s) => Some(s),
            Self::ClientTls(s) => Some(s.get_ref().0),
            Self::ServerTls(s) => Some(s.get_ref().0),
            Self::Unix(_) => None,
        }
    }

    /// The protocol chosen by ALPN, if any.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) | Self::Unix(_) => None,
            Self::ClientTls(s) => s.get_ref().1.alpn_protocol(),
            Self::ServerTls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// True when ALPN chose HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.alpn() == Some(b"h2")
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_close(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::Unix(s) => Pin::new(s).poll_close(cx),
        }
    }
}
