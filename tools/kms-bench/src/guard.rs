//! The loopback guard: benchmarks here may only talk to this machine unless
//! the operator says otherwise with `--allow-remote`.

use std::net::IpAddr;

use anyhow::{Context, bail};
use http::Uri;

/// Whether `host` (as in a URI authority; IPv6 in brackets) names this machine:
/// `localhost`, an address in 127.0.0.0/8, or `::1` (also as IPv4-mapped 127/8).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.octets()[0] == 127,
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 127)
        }
        Err(_) => false,
    }
}

/// Parse and check `--endpoint`: `http://host[:port][/]`, loopback unless `allow_remote`.
pub fn check_endpoint(endpoint: &str, allow_remote: bool) -> anyhow::Result<Uri> {
    let uri: Uri = endpoint
        .parse()
        .with_context(|| format!("--endpoint {endpoint:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("--endpoint scheme {other:?} is not supported (plain http only)"),
        None => bail!("--endpoint {endpoint:?} needs a scheme, e.g. http://127.0.0.1:4566"),
    }
    let Some(host) = uri.host() else {
        bail!("--endpoint {endpoint:?} has no host");
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        bail!("--endpoint {endpoint:?} must not have a path or query");
    }
    if !allow_remote && !is_loopback_host(host) {
        bail!(
            "refusing non-loopback endpoint host {host:?}; pass --allow-remote to benchmark another machine"
        );
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.255",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "128.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::2]",
            "example.com",
            "localhost.example.com",
            "126.255.255.255",
            "[fe80::1]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("http://127.0.0.1:4566", false).is_ok());
        assert!(check_endpoint("http://localhost:4566/", false).is_ok());
        assert!(check_endpoint("http://[::1]:4566", false).is_ok());
        let e = check_endpoint("http://10.0.1.4:443", false).unwrap_err();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        assert!(check_endpoint("http://kms.us-east-1.amazonaws.com", false).is_err());
        assert!(check_endpoint("http://10.0.1.4:443", true).is_ok());
        assert!(check_endpoint("https://127.0.0.1:4566", false).is_err());
        assert!(check_endpoint("127.0.0.1:4566", false).is_err());
        assert!(check_endpoint("http://127.0.0.1:4566/kms", false).is_err());
        // Userinfo cannot smuggle a remote host past the check.
        assert!(check_endpoint("http://127.0.0.1@10.0.0.1:4566", false).is_err());
    }
}
