//! Regression: over HTTP/2, ONE connection with a zero flow-control window
//! and 20 streams asking for a 64 MiB body took the server to 1.46 GB: every
//! stream pinned its own copy of the body. Now the body is read from the
//! script's one string as flow control lets it out, and streams per
//! connection are bounded.

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::Server;
use futures_rustls::TlsConnector;
use http_body_util::Empty;
use hyper::client::conn::http2;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};

const STREAMS: usize = 20;

#[derive(Clone)]
struct Exec;

impl<F> hyper::rt::Executor<F> for Exec
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        std::thread::spawn(move || async_io::block_on(fut));
    }
}

#[test]
fn zero_window_streams_stay_bounded() {
    let fixtures = lune_test_fixtures::start().expect("fixtures start");
    let env = fixtures.env();
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("a fixture variable")
    };
    let server = Server::start("tests/net/hardening/_h2_big_body_server.luau", &env);
    let port = server.port;
    let idle = server.status_kib("VmRSS") / 1024;

    let ca = std::fs::read(get("LUNE_TEST_CA_FILE")).expect("the CA file");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];

    let grown = async_io::block_on(async {
        let tcp = async_net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS");
        let (sender, conn) = http2::Builder::new(Exec)
            .timer(smol_hyper::rt::SmolTimer::new())
            .initial_stream_window_size(0)
            .initial_connection_window_size(0)
            .handshake::<_, Empty<Bytes>>(smol_hyper::rt::FuturesIo::new(tls))
            .await
            .expect("an HTTP/2 handshake");
        std::thread::spawn(move || async_io::block_on(conn));
        let mut heads = Vec::new();
        for _ in 0..STREAMS {
            let mut sender = sender.clone();
            heads.push(async move {
                let request = http::Request::get(format!("https://localhost:{port}/"))
                    .body(Empty::<Bytes>::new())
                    .expect("a request");
                sender.send_request(request).await.expect("a response head")
            });
        }
        // Keep the responses (and their unread bodies) open while measuring.
        let mut responses = Vec::new();
        for head in heads {
            responses.push(head.await);
        }
        async_io::Timer::after(Duration::from_secs(1)).await;
        let grown = (server.status_kib("VmRSS") / 1024).saturating_sub(idle);
        drop(responses);
        grown
    });
    drop(server);
    assert!(
        grown < 200,
        "{STREAMS} zero-window streams of a 64 MiB body grew the server by {grown} MiB"
    );
}
