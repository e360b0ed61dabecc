//! A certificate authority made at start, and the certificates it signs.

use std::{io, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
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

/// The test CA's certificate, two leaf certificates it signed for
/// `localhost`/`127.0.0.1`, and one self-signed (untrusted) certificate.
pub(crate) struct Certificates {
    pub(crate) ca_pem: String,
    pub(crate) server: Pem,
    pub(crate) for_scripts: Pem,
    pub(crate) untrusted: Pem,
}

pub(crate) fn generate() -> io::Result<Certificates> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Lune Test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?).map_err(err)?;
    let leaf = |signed: bool| -> io::Result<Pem> {
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let cert = if signed {
            params.signed_by(&key, &ca).map_err(err)?
        } else {
            params.self_signed(&key).map_err(err)?
        };
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    };
    Ok(Certificates {
        ca_pem: ca.pem(),
        server: leaf(true)?,
        for_scripts: leaf(true)?,
        untrusted: leaf(false)?,
    })
}

/// A rustls server configuration for `pem`, offering `alpn`.
pub(crate) fn server_config(pem: &Pem, alpn: &[&[u8]]) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(err)?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(err)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
