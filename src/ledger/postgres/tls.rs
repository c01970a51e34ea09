//! TLS to PostgreSQL with rustls: the one connector the pool, the key listener, the read
//! commands and `doctor` all connect with, checking the server's certificate as the URL's
//! `sslmode` asks (libpq's meanings; see `config::PgTls`).
//!
//! Written here over tokio-rustls (about a hundred lines) rather than taken from
//! tokio-postgres-rustls: the tree already has rustls, its ring provider and webpki-roots
//! through reqwest, and `verify-ca` needs a verifier of our own anyway.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::config::{PgTls, PgUrl, SslMode};

/// The connector for every connection to one ledger URL; cheap to clone.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

/// Why a connector could not be built: `sslrootcert` unreadable or not a certificate.
#[derive(Debug, thiserror::Error)]
#[error(
    "sslrootcert {path}: {why}; give a PEM file of the CA that signed PostgreSQL's certificate"
)]
pub struct RootCertError {
    path: String,
    why: String,
}

/// The driver's settings and the connector for `url`: the one way in for every connection.
pub fn connect_config(url: &PgUrl) -> Result<(tokio_postgres::Config, MakeRustls), String> {
    let config = url.driver_config().map_err(|e| super::describe(&e))?;
    let tls = MakeRustls::new(url.tls()).map_err(|e| e.to_string())?;
    Ok((config, tls))
}

impl MakeRustls {
    /// Roots: the built-in web roots plus `sslrootcert`'s. With plain mode no handshake ever
    /// happens (the driver is told `sslmode=disable`), so the verifier is never asked.
    pub fn new(tls: &PgTls) -> Result<Self, RootCertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &tls.root_cert {
            let fail = |why: String| RootCertError {
                path: path.display().to_string(),
                why,
            };
            let mut found = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
                let cert = cert.map_err(|e| fail(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("not a usable CA certificate ({e})")))?;
                found += 1;
            }
            if found == 0 {
                return Err(fail("holds no PEM certificate".to_owned()));
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| RootCertError {
                path: "(built-in roots)".to_owned(),
                why: e.to_string(),
            })?;
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match (tls.mode, tls.verifies_chain()) {
            (SslMode::VerifyFull, _) => webpki,
            (_, true) => Arc::new(Verify {
                webpki,
                algorithms,
                check: Check::ChainOnly,
            }),
            (_, false) => Arc::new(Verify {
                webpki,
                algorithms,
                check: Check::Nothing,
            }),
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RootCertError {
                path: "(TLS versions)".to_owned(),
                why: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// What `verify-ca` and a bare `require` check of the certificate.
#[derive(Debug)]
enum Check {
    /// `verify-ca`: the chain, not the host name.
    ChainOnly,
    /// `require` without a root: nothing (libpq's meaning: encrypted, not authenticated).
    Nothing,
}

#[derive(Debug)]
struct Verify {
    webpki: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
    check: Check,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check {
            Check::Nothing => Ok(ServerCertVerified::assertion()),
            // webpki checks the chain before the name: a name mismatch means the chain held.
            Check::ChainOnly => match self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server's certificate was refused, said so that the user knows what to change.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL's TLS certificate was refused ({cause}): {fix}")]
pub struct CertificateRefused {
    cause: String,
    fix: &'static str,
}

/// Whether `err` (anywhere in its chain) is a refused certificate: waiting will not fix it.
pub fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<CertificateRefused>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn handshake_error(err: io::Error) -> Box<dyn std::error::Error + Send + Sync> {
    let Some(rustls::Error::InvalidCertificate(cert)) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return Box::new(err);
    };
    let fix = match cert {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was not issued for the host in the URL; connect by a name the certificate holds, or use sslmode=verify-ca"
        }
        _ => {
            "give the CA that signed it with sslrootcert=PATH (or sslmode=require to encrypt without checking it)"
        }
    };
    let cause = match cert {
        CertificateError::UnknownIssuer => {
            "signed by a CA neither sslrootcert nor the built-in roots hold".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".to_owned(),
        other => format!("{other:?}"),
    };
    Box::new(CertificateRefused { cause, fix })
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{domain}` is not a host name TLS can check"),
            )
        })?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// One connection's handshake.
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

type Handshake<S> = Pin<
    Box<
        dyn Future<Output = Result<RustlsStream<S>, Box<dyn std::error::Error + Send + Sync>>>
            + Send,
    >,
>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(handshake_error)
        })
    }
}

/// An encrypted connection to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    /// No channel binding: SCRAM still authenticates both ends by the password, and
    /// `tls-server-end-point` would need the certificate's signature hash parsed out of it.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
