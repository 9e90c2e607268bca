//! TLS: the self-signed certificate made on first start, and the rustls server configuration
//! (TLS 1.2 and 1.3 only, ring as the one crypto provider).
//!
//! On first start we make a small local certificate authority, sign a server certificate for
//! `localhost`, `127.0.0.1` and `::1` with it, and throw the authority's private key away: clients
//! trust `tls/ca.pem`, and nobody can sign another certificate with it.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot make the self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the certificate and key do not form a usable TLS configuration")]
    Config(#[source] rustls::Error),
}

/// Where the certificate, its key and the CA clients should trust are kept.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Only for the self-signed certificate: what clients pass as `--ca-cert`.
    pub ca: Option<PathBuf>,
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Returns the self-signed certificate files in `dir`, making them on first use.
pub fn ensure_self_signed(dir: &Path) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    create_dir_private(dir)?;

    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Lockstep local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(TlsError::Generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Lockstep hub");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(825);
    let cert = params
        .signed_by(&server_key, &issuer)
        .map_err(TlsError::Generate)?;

    write_file(&files.key, server_key.serialize_pem().as_bytes(), true)?;
    write_file(&files.cert, cert.pem().as_bytes(), false)?;
    if let Some(ca) = &files.ca {
        write_file(ca, ca_cert.pem().as_bytes(), false)?;
    }
    Ok(files)
}

/// A rustls configuration from PEM files: TLS 1.2 and 1.3 only, HTTP/2 and HTTP/1.1 via ALPN.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|_| TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        })?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|_| TlsError::Pem {
        path: files.key.clone(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn create_dir_private(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| TlsError::Io {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_material_is_made_once_and_kept() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let tls = dir.path().join("tls");
        let first = ensure_self_signed(&tls).unwrap_or_else(|e| unreachable!("{e}"));
        let cert = std::fs::read(&first.cert).unwrap_or_default();
        assert!(server_config(&first).is_ok());
        let second = ensure_self_signed(&tls).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            std::fs::read(&second.cert).unwrap_or_default(),
            cert,
            "certificate was remade"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
    }
}
