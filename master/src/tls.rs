//! Securing the control plane: TLS on the gRPC listener, optional mTLS (a worker must present a
//! certificate signed by `--grpc.client-ca-file`, and its certificate names the worker ids it
//! may register as), and an optional shared bearer token on the stream.
//!
//! Both checks run before the worker's `Hello` reaches the coordinator: a TLS handshake without
//! the right certificate never becomes a stream, and [`ControlAuth`] refuses a stream without
//! the token with `UNAUTHENTICATED`. The identity a certificate proves is handed to the control
//! service as a [`PeerIdentity`] request extension, which refuses a `Hello` for another worker id
//! (`PERMISSION_DENIED`): a stolen worker certificate cannot take over another worker's targets.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// `promshard master` flags for the control plane.
#[derive(Clone, Debug, Default)]
pub struct GrpcSecurity {
    /// PEM certificate (chain) and key of the gRPC listener; TLS is on when both are set.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle: workers must present a certificate it signed (mTLS). Needs TLS.
    pub client_ca_file: Option<PathBuf>,
    /// A file holding a shared token workers must send as `authorization: Bearer <token>`.
    pub token_file: Option<PathBuf>,
}

impl GrpcSecurity {
    /// The listener's TLS config, or `None` for plaintext. Fails naming the file it could not
    /// read, and on a CA without a certificate (mTLS over plaintext would be no check at all).
    pub fn server_tls(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (cert, key) = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => (read(c)?, read(k)?),
            (None, None) if self.client_ca_file.is_some() => {
                anyhow::bail!(
                    "--grpc.client-ca-file needs --grpc.tls-cert-file and --grpc.tls-key-file"
                )
            }
            (None, None) => return Ok(None),
            _ => anyhow::bail!("--grpc.tls-cert-file and --grpc.tls-key-file go together"),
        };
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca_file {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(Some(tls))
    }

    /// The interceptor that checks the token (if any) and records the certificate's identity.
    pub fn auth(&self) -> anyhow::Result<ControlAuth> {
        let token = match &self.token_file {
            Some(p) => Some(read_token(p)?),
            None => None,
        };
        if token.is_some() && self.cert_file.is_none() {
            tracing::warn!(
                "--grpc.token-file without TLS: the token crosses the network in clear text; \
                 set --grpc.tls-cert-file and --grpc.tls-key-file"
            );
        }
        Ok(ControlAuth {
            token: token.map(|t| Arc::from(format!("Bearer {t}"))),
        })
    }
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a token file: the whole file, surrounding whitespace removed (a trailing newline is
/// what `echo` and Kubernetes secrets leave). An empty token is refused: it would let anyone in.
pub fn read_token(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let token = text.trim();
    anyhow::ensure!(!token.is_empty(), "token file {} is empty", path.display());
    Ok(token.to_string())
}

/// Compares without an early exit, so response timing tells nothing about a token's prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who a worker's client certificate says it is: the subject's common name and DNS SANs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity(pub Vec<String>);

impl PeerIdentity {
    /// Whether this certificate may register as `worker_id`.
    pub fn allows(&self, worker_id: &str) -> bool {
        self.0.iter().any(|n| n == worker_id)
    }

    /// The names in a DER certificate (CN first, then DNS SANs).
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    names.push(d.to_string());
                }
            }
        }
        Some(PeerIdentity(names))
    }
}

/// Checks the shared token and attaches the client certificate's identity to the request.
#[derive(Clone, Default)]
pub struct ControlAuth {
    /// The whole expected `authorization` value, `Bearer <token>`.
    token: Option<Arc<str>>,
}

impl Interceptor for ControlAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(want) = &self.token {
            let got = req
                .metadata()
                .get("authorization")
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(got, want.as_bytes()) {
                return Err(Status::unauthenticated(
                    "missing or wrong bearer token for the control plane",
                ));
            }
        }
        let identity = req
            .peer_certs()
            .and_then(|certs| certs.first().and_then(|c| PeerIdentity::from_der(c)));
        if let Some(id) = identity {
            req.extensions_mut().insert(id);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_certificate_names() {
        let mut params =
            rcgen::CertificateParams::new(vec!["w1.workers.local".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "w1");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = PeerIdentity::from_der(cert.der()).unwrap();
        assert_eq!(id.0, vec!["w1".to_string(), "w1.workers.local".to_string()]);
        assert!(id.allows("w1"));
        assert!(!id.allows("w2"));
    }

    #[test]
    fn token_interceptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let sec = GrpcSecurity {
            token_file: Some(path),
            ..GrpcSecurity::default()
        };
        let mut auth = sec.auth().unwrap();
        let err = auth.call(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer s3cre".parse().unwrap());
        assert!(auth.call(wrong).is_err());
        let mut right = Request::new(());
        right
            .metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.call(right).is_ok());
    }

    #[test]
    fn ca_without_tls_is_refused() {
        let sec = GrpcSecurity {
            client_ca_file: Some("/nonexistent/ca.pem".into()),
            ..GrpcSecurity::default()
        };
        let err = sec.server_tls().unwrap_err().to_string();
        assert!(err.contains("--grpc.tls-cert-file"), "{err}");
    }
}
