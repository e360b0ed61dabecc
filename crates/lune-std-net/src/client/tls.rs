//! Client trust: webpki's roots, the system store, and `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`. Built once per process, on first use.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};

/// Which application protocols a TLS connection offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alpn {
    /// `h2` then `http/1.1`: HTTP requests.
    Http,
    /// `http/1.1` only: WebSocket handshakes.
    Http1,
    /// Nothing: raw TLS streams.
    None,
}

struct Configs {
    http: Arc<ClientConfig>,
    http1: Arc<ClientConfig>,
    raw: Arc<ClientConfig>,
}

static CONFIGS: OnceLock<Configs> = OnceLock::new();

/// The client TLS configuration offering the given protocols.
pub(crate) fn client_config(alpn: Alpn) -> Arc<ClientConfig> {
    let configs = CONFIGS.get_or_init(|| {
        let roots = Arc::new(root_store());
        let make = |protocols: &[&[u8]]| {
            let mut config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Arc::new(config)
        };
        Configs {
            http: make(&[b"h2", b"http/1.1"]),
            http1: make(&[b"http/1.1"]),
            raw: make(&[]),
        }
    });
    match alpn {
        Alpn::Http => configs.http.clone(),
        Alpn::Http1 => configs.http1.clone(),
        Alpn::None => configs.raw.clone(),
    }
}

fn root_store() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The system store; unreadable or invalid entries are skipped, as every
    // TLS client does, since one bad file must not break all of HTTPS.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        add_pem_file(&mut roots, Path::new(&file));
    }
    if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dir) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    add_pem_file(&mut roots, &entry.path());
                }
            }
        }
    }
    roots
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) {
    if let Ok(certs) = CertificateDer::pem_file_iter(path) {
        roots.add_parsable_certificates(certs.flatten());
    }
}
