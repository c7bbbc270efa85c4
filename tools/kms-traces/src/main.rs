//! `kms-traces`: a small trace backend of the project's own, for machines
//! where no registry can supply Jaeger. It receives OTLP/gRPC (traces and
//! metrics) from the five services and shows them:
//!
//! - `GET /` the newest traces (root span, request id, services, error code),
//! - `GET /trace/<trace-id>` one trace as a tree of spans with their attributes,
//! - `GET /api/traces/<trace-id>` and `GET /api/traces?request_id=<id>` as JSON,
//! - `GET /api/metrics` the metric names received, with data point counts.
//!
//! Everything is in memory (the newest `--max-traces`).

mod store;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use store::Store;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// OTLP/gRPC receiver (point OTEL_EXPORTER_OTLP_ENDPOINT here).
    #[arg(long, env = "KMS_TRACES_OTLP_LISTEN", default_value = "127.0.0.1:4317")]
    otlp_listen: SocketAddr,
    /// The web page and JSON API.
    #[arg(
        long,
        env = "KMS_TRACES_HTTP_LISTEN",
        default_value = "127.0.0.1:16686"
    )]
    http_listen: SocketAddr,
    /// Traces kept in memory (the oldest go first).
    #[arg(long, env = "KMS_TRACES_MAX_TRACES", default_value_t = 5000)]
    max_traces: usize,
}

#[derive(Clone)]
struct Receiver(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        for rm in request.into_inner().resource_metrics {
            let service = rm
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(store::any_to_string)
                .unwrap_or_default();
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let points = match &m.data {
                        Some(Data::Sum(s)) => s.data_points.len(),
                        Some(Data::Gauge(g)) => g.data_points.len(),
                        Some(Data::Histogram(h)) => h.data_points.len(),
                        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                        Some(Data::Summary(s)) => s.data_points.len(),
                        None => 0,
                    };
                    self.0.add_metric_points(&service, &m.name, points as u64);
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let store = Arc::new(Store::new(args.max_traces));
    let otlp = tokio::net::TcpListener::bind(args.otlp_listen).await?;
    let http = tokio::net::TcpListener::bind(args.http_listen).await?;
    tracing::info!(otlp = %otlp.local_addr()?, http = %http.local_addr()?, "kms-traces serving");
    let receiver = Receiver(Arc::clone(&store));
    let grpc = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .add_service(MetricsServiceServer::new(receiver))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(otlp));
    tokio::select! {
        r = grpc => r?,
        r = ui::serve(http, store) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
