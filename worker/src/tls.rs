//! How the worker proves itself to the master and checks the master: TLS with the master's CA
//! (`--master.ca-file`, with an `https://` master URL), an optional client certificate for mTLS
//! (`--master.cert-file`/`--master.key-file`, naming the worker's id as CN or DNS SAN), and an
//! optional shared token sent as `authorization: Bearer <token>` on the stream
//! (`--master.token-file`).
//!
//! Files are read again on every (re)connect, so a rotated certificate or token (a Kubernetes
//! secret update) is used from the next connection without restarting the worker.

use std::path::PathBuf;

use anyhow::Context as _;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic::{Request, Status};

#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Name the master's certificate must carry (default: the host of the master URL).
    pub server_name: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl ClientSecurity {
    /// The TLS config for `master_url`, or `None` for plaintext (`http://`).
    pub fn tls_config(&self, master_url: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
        let https = master_url.starts_with("https://");
        if !https {
            anyhow::ensure!(
                self.ca_file.is_none() && self.cert_file.is_none(),
                "TLS files are set but the master URL {master_url:?} is not https://"
            );
            return Ok(None);
        }
        let ca = self.ca_file.as_ref().context(
            "an https:// master needs --master.ca-file (the CA that signed its certificate)",
        )?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => tls = tls.identity(Identity::from_pem(read(c)?, read(k)?)),
            (None, None) => {}
            _ => anyhow::bail!("--master.cert-file and --master.key-file go together"),
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(Some(tls))
    }

    /// The interceptor adding the token to every request (none without a token file).
    pub fn token(&self) -> anyhow::Result<TokenInterceptor> {
        let Some(path) = &self.token_file else {
            return Ok(TokenInterceptor(None));
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading token file {}", path.display()))?;
        let token = text.trim();
        anyhow::ensure!(!token.is_empty(), "token file {} is empty", path.display());
        let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {token}"))
            .with_context(|| format!("token in {} is not a valid header value", path.display()))?;
        value.set_sensitive(true);
        Ok(TokenInterceptor(Some(value)))
    }
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[derive(Clone)]
pub struct TokenInterceptor(Option<AsciiMetadataValue>);

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_and_misconfigurations() {
        let none = ClientSecurity::default();
        assert!(none.tls_config("http://m:9400").unwrap().is_none());
        let err = none.tls_config("https://m:9400").unwrap_err().to_string();
        assert!(err.contains("--master.ca-file"), "{err}");
        let ca_over_http = ClientSecurity {
            ca_file: Some("/ca.pem".into()),
            ..ClientSecurity::default()
        };
        assert!(ca_over_http.tls_config("http://m:9400").is_err());
    }

    #[test]
    fn token_is_sent_as_bearer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "abc\n").unwrap();
        let sec = ClientSecurity {
            token_file: Some(path),
            ..ClientSecurity::default()
        };
        let mut i = sec.token().unwrap();
        let req = i.call(Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer abc");
    }
}
