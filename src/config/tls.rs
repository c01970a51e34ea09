//! TLS settings of the config: a private CA bundle (`tls.ca_file`) read and checked at load, so
//! a bad file is a config error with its path and key rather than a failure at the first request.

/// The certificates of a PEM bundle (`tls.ca_file`), checked the way the TLS client will use
/// them as trust anchors. An error says what is wrong with the file.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("not a PEM certificate bundle: {}", error_chain(&e)))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".to_owned());
    }
    // Building a client parses every certificate into a root store, as serving will.
    let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false);
    for cert in &certs {
        builder = builder.add_root_certificate(cert.clone());
    }
    builder
        .build()
        .map_err(|e| format!("not a usable CA certificate: {}", error_chain(&e)))?;
    Ok(certs)
}

/// The error and its causes on one line; reqwest's top-level message alone says little.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
