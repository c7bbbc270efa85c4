//! `kms-health`: container health probe. `kms-health grpc HOST:PORT` exits 0
//! when the service's grpc.health.v1 reports SERVING; `kms-health tcp HOST:PORT`
//! exits 0 when the port accepts a connection (the gateway's HTTP listener).

use std::time::Duration;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(addr)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: kms-health grpc|tcp HOST:PORT");
        return std::process::ExitCode::from(2);
    };
    let ok = tokio::time::timeout(Duration::from_secs(3), async {
        match mode.as_str() {
            "tcp" => tokio::net::TcpStream::connect(addr).await.is_ok(),
            _ => {
                let Ok(endpoint) =
                    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                else {
                    return false;
                };
                let Ok(channel) = endpoint.connect().await else {
                    return false;
                };
                matches!(
                    HealthClient::new(channel)
                        .check(HealthCheckRequest { service: String::new() })
                        .await,
                    Ok(r) if r.get_ref().status == ServingStatus::Serving as i32
                )
            }
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
