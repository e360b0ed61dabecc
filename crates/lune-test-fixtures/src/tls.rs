//! A certificate authority made at start, and the certificates it signs.

use std::{io, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// PEM text of a certificate and its key.
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
}

/// The test CA's certificate and what it signed: leaf certificates for
/// `localhost`/`127.0.0.1` (one for the fixtures, one for scripts), a
/// client certificate, one for another name, one that has expired and one
/// not valid before 2090; one
/// self-signed (untrusted) certificate; and a second, private CA with a
/// `localhost` certificate of its own (trusted by nothing by default).
pub(crate) struct Certificates {
    pub(crate) ca_pem: String,
    pub(crate) server: Pem,
    pub(crate) for_scripts: Pem,
    pub(crate) client: Pem,
    pub(crate) other_name: Pem,
    pub(crate) expired: Pem,
    pub(crate) not_yet_valid: Pem,
    pub(crate) untrusted: Pem,
    pub(crate) private_ca_pem: String,
    pub(crate) private_server: Pem,
}

fn new_ca(name: &str) -> io::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().map_err(err)?).map_err(err)
}

/// What a leaf certificate is for.
enum Leaf {
    Server,
    Client,
    OtherName,
    Expired,
    NotYetValid,
}

fn leaf(kind: &Leaf, issuer: Option<&CertifiedIssuer<'static, KeyPair>>) -> io::Result<Pem> {
    let names = match kind {
        Leaf::OtherName => vec!["other.example".to_string()],
        Leaf::Client => vec!["lune-test-client".to_string()],
        Leaf::Server | Leaf::Expired | Leaf::NotYetValid => {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        }
    };
    let mut params = CertificateParams::new(names).map_err(err)?;
    match kind {
        Leaf::Client => {
            params
                .distinguished_name
                .push(DnType::CommonName, "lune-test-client");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Leaf::Expired => {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        Leaf::NotYetValid => {
            params.not_before = rcgen::date_time_ymd(2090, 1, 1);
            params.not_after = rcgen::date_time_ymd(2091, 1, 1);
        }
        Leaf::Server | Leaf::OtherName => {}
    }
    let key = KeyPair::generate().map_err(err)?;
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, ca).map_err(err)?,
        None => params.self_signed(&key).map_err(err)?,
    };
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

pub(crate) fn generate() -> io::Result<Certificates> {
    let ca = new_ca("Lune Test CA")?;
    let private_ca = new_ca("Lune Test Private CA")?;
    Ok(Certificates {
        ca_pem: ca.pem(),
        server: leaf(&Leaf::Server, Some(&ca))?,
        for_scripts: leaf(&Leaf::Server, Some(&ca))?,
        client: leaf(&Leaf::Client, Some(&ca))?,
        other_name: leaf(&Leaf::OtherName, Some(&ca))?,
        expired: leaf(&Leaf::Expired, Some(&ca))?,
        not_yet_valid: leaf(&Leaf::NotYetValid, Some(&ca))?,
        untrusted: leaf(&Leaf::Server, None)?,
        private_ca_pem: private_ca.pem(),
        private_server: leaf(&Leaf::Server, Some(&private_ca))?,
    })
}

/// A rustls server configuration for `pem`, offering `alpn`; with
/// `client_ca`, clients must present a certificate it signed.
pub(crate) fn server_config(
    pem: &Pem,
    alpn: &[&[u8]],
    client_ca: Option<&str>,
) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(err)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.map_err(err)?).map_err(err)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(err)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(err)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
