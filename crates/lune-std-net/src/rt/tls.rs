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
    /// No protocol named: raw TLS streams.
    Raw,
}

struct Configs {
    http: Arc<ClientConfig>,
    http1: Arc<ClientConfig>,
    raw: Arc<ClientConfig>,
}

static CONFIGS: OnceLock<Result<Configs, String>> = OnceLock::new();

/// The client TLS configuration offering the given protocols. Built once per
/// process; an unusable `SSL_CERT_FILE` or `SSL_CERT_DIR` is an error for
/// every TLS connection rather than a silently smaller set of roots.
pub(crate) fn client_config(alpn: Alpn) -> Result<Arc<ClientConfig>, String> {
    let configs = CONFIGS.get_or_init(|| {
        let roots = Arc::new(root_store()?);
        let make = |protocols: &[&[u8]]| -> Result<Arc<ClientConfig>, String> {
            let mut config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Configs {
            http: make(&[b"h2", b"http/1.1"])?,
            http1: make(&[b"http/1.1"])?,
            raw: make(&[])?,
        })
    });
    let configs = configs.as_ref().map_err(Clone::clone)?;
    Ok(match alpn {
        Alpn::Http => configs.http.clone(),
        Alpn::Http1 => configs.http1.clone(),
        Alpn::Raw => configs.raw.clone(),
    })
}

fn root_store() -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The system store; unreadable or invalid entries are skipped, as every
    // TLS client does, since one bad system file must not break all of HTTPS.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    // What the user named explicitly must work, or say why not.
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        let path = Path::new(&file);
        let added = add_pem_file(&mut roots, path)
            .map_err(|e| format!("SSL_CERT_FILE '{}' is unusable: {e}", path.display()))?;
        if added == 0 {
            return Err(format!(
                "SSL_CERT_FILE '{}' holds no certificate",
                path.display()
            ));
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dirs) {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("SSL_CERT_DIR '{}' is unusable: {e}", dir.display()))?;
            for entry in entries.flatten() {
                // Other files (hash links to the same certificates, CRLs,
                // READMEs) live in certificate directories too.
                let _ = add_pem_file(&mut roots, &entry.path());
            }
        }
    }
    Ok(roots)
}

/// Adds every certificate of a PEM file; how many were added.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let (added, _) = roots.add_parsable_certificates(certs);
    Ok(added)
}
