//! `kms-health`: container health probe. `kms-health grpc HOST:PORT ROLE` exits 0
//! when the service's grpc.health.v1 reports SERVING; `kms-health tcp HOST:PORT`
//! exits 0 when the port accepts a connection (the gateway's HTTP listener).
//!
//! With `KMS_INTERNAL_TLS_DIR` set (the service's own setting, which a
//! container's health check inherits) the probe speaks mutual TLS as the `ops`
//! role (`ops.pem`, `ops.key` in that folder), verifying the server as ROLE
//! (`keystore` checks `keystore.internal.kms`); without it, plaintext h2c.

use std::time::Duration;

use kms_telemetry::tls::{InternalTls, Role};

async fn grpc(addr: &str, server: Option<Role>) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return false;
    };
    let channel = match std::env::var_os("KMS_INTERNAL_TLS_DIR") {
        Some(dir) => {
            let Some(server) = server else {
                eprintln!("kms-health: with KMS_INTERNAL_TLS_DIR, name the server's role");
                return false;
            };
            let tls = match InternalTls::load(std::path::Path::new(&dir), Role::Ops) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("kms-health: {e}");
                    return false;
                }
            };
            tls.connect(&endpoint, server).await
        }
        None => endpoint.connect().await,
    };
    let Ok(channel) = channel else {
        return false;
    };
    kms_telemetry::serving(channel).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(addr)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: kms-health grpc HOST:PORT ROLE | kms-health tcp HOST:PORT");
        return std::process::ExitCode::from(2);
    };
    let server = match args.get(3).map(|r| r.parse::<Role>()).transpose() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kms-health: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ok = tokio::time::timeout(Duration::from_secs(3), async {
        match mode.as_str() {
            "tcp" => tokio::net::TcpStream::connect(addr).await.is_ok(),
            _ => grpc(addr, server).await,
        }
    })
    .await
    .unwrap_or(false);
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
