//! Telemetry shared by the five services.
//!
//! - Logs: `tracing` with `RUST_LOG` (default `info`), to stderr; with
//!   `KMS_LOG_SPANS=1` each line also carries the fields of its spans.
//! - Traces and metrics: OpenTelemetry, exported over OTLP/gRPC when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set (for example `http://jaeger:4317`);
//!   the resource names the service (`service.name`, overridable with
//!   `OTEL_SERVICE_NAME`). Unset: no exporter, and the instruments are no-ops.
//! - Propagation: W3C trace context (`traceparent`) on every gRPC hop. Clients
//!   wrap their channel with [`Inject`] ([`Traced`]); servers build each
//!   request's span with [`server_span`] (`Server::builder().trace_fn(..)`), so
//!   one API call is one trace across gateway, authz, keystore, registry and
//!   audit.
//!
//! - Internal transport: [`local`] (in-process calls in the one-process stack,
//!   and the server loop of every service) and [`tls`] (mutual TLS on every
//!   hop between processes, with a per-server allowlist of caller roles).
//!
//! Spans carry operation names, key ids, accounts, endpoint ids, decisions and
//! error codes, never a secret: no plaintext, key material, signature or
//! credential is ever a span field.

pub mod local;
pub mod tls;

use std::time::Duration;

use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use opentelemetry::KeyValue;
pub use opentelemetry::metrics::{Counter, Histogram, Meter};

/// The providers of one process; dropping it flushes and shuts them down.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Export what is buffered now (tests, and before exit).
    pub fn flush(&self) {
        if let Some(t) = &self.tracer {
            let _ = t.force_flush();
        }
        if let Some(m) = &self.meter {
            let _ = m.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// The OTLP endpoint from the environment, if any.
pub fn otlp_endpoint_from_env() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .ok()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|s| !s.trim().is_empty())
}

/// Set up logs, and traces and metrics when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set, for the process of `service` (e.g. `kms-gateway`). Call once, inside
/// the Tokio runtime, and keep the guard until exit.
pub fn init(service: &str) -> anyhow::Result<Telemetry> {
    init_with(service, otlp_endpoint_from_env())
}

/// [`init`] with an explicit OTLP endpoint (`None`: logs only).
pub fn init_with(service: &str, endpoint: Option<String>) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Log lines leave out the fields of the spans they happen in unless
    // `KMS_LOG_SPANS=1`: formatting every span's fields for the log (ten spans or
    // so per API call) is a cost on the hot path for lines that are rare there.
    let log_spans = std::env::var_os("KMS_LOG_SPANS").is_some_and(|v| v == "1");
    let fmt = tracing_subscriber::Layer::with_filter(
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr),
        tracing_subscriber::filter::filter_fn(move |meta| log_spans || meta.is_event()),
    );
    let Some(endpoint) = endpoint else {
        // Nothing consumes spans here (no exporter, span fields left out of the
        // logs): the level filter goes on the log layer alone, so no layer is
        // interested in a span and `span!` / `#[instrument]` cost nothing on the
        // hot path (no span record, no enter/exit bookkeeping).
        let fmt = tracing_subscriber::Layer::with_filter(
            tracing_subscriber::fmt::layer().with_writer(std::io::stderr),
            tracing_subscriber::filter::FilterExt::and(
                filter,
                tracing_subscriber::filter::filter_fn(move |meta| log_spans || meta.is_event()),
            ),
        );
        tracing_subscriber::registry().with(fmt).try_init()?;
        return Ok(Telemetry {
            tracer: None,
            meter: None,
        });
    };
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    let resource = Resource::builder()
        .with_service_name(name)
        .with_attribute(KeyValue::new("service.namespace", "kms-vpce"))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics)
        .with_interval(Duration::from_secs(10))
        .build();
    let meter = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build();
    global::set_meter_provider(meter.clone());
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer("kms-vpce"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false);
    // Only our own spans (and tonic's client/server ones we create) are
    // exported; dependency internals stay out of the traces.
    let otel_filter = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with("kms")
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(tracing_subscriber::Layer::with_filter(otel, otel_filter))
        .try_init()?;
    Ok(Telemetry {
        tracer: Some(tracer),
        meter: Some(meter),
    })
}

/// Whether the server behind `channel` answers `grpc.health.v1` with SERVING
/// (for the whole server: the empty service name).
pub async fn serving(channel: tonic::transport::Channel) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    matches!(
        HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await,
        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32
    )
}

/// The meter of a service's instruments (no-op without an exporter).
pub fn meter(service: &'static str) -> Meter {
    global::meter(service)
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Client interceptor: writes the current span's context as `traceparent`
/// (and `tracestate`) into the request's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inject;

impl tonic::service::Interceptor for Inject {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new()
            .inject_context(&cx, &mut MetadataInjector(req.metadata_mut()));
        Ok(req)
    }
}

/// A transport whose every request carries the caller's trace context.
pub type Traced = InterceptedService<local::Transport, Inject>;

/// Wrap a transport so that requests carry the trace context.
pub fn traced(transport: local::Transport) -> Traced {
    InterceptedService::new(transport, Inject)
}

/// The span of one incoming gRPC request, child of the caller's span when the
/// request carries `traceparent`. Use as `Server::builder().trace_fn(server_span)`.
pub fn server_span<B>(req: &http::Request<B>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = rpc_server_span(service, method);
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    let _ = span.set_parent(parent);
    span
}

/// The server span of one call of `service`/`method` (a child of the current
/// span; [`server_span`] sets the caller's context as its parent).
pub fn rpc_server_span(service: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        target: "kms::grpc",
        "grpc.server",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    )
}

/// Rename the current span (once the operation is known). `otel.name`
/// recorded after the span's context exists is ignored by
/// tracing-opentelemetry, so this goes through the OpenTelemetry span itself.
pub fn rename_current_span(name: String) {
    use opentelemetry::trace::TraceContextExt;
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.context().span().update_name(name);
    }
}

/// Put an attribute on the current span, whatever fields it declared (a
/// handler's own `#[instrument]` span, typically).
/// Nothing to do (no allocation) when no span is being recorded.
pub fn set_attribute(key: &'static str, value: impl Into<String>) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.set_attribute(key, value.into());
    }
}

/// The trace id of the current span, as 32 hex digits (empty when not traced).
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn server_span_names_the_rpc() {
        let req = http::Request::builder()
            .uri("http://x/kms.authz.v1.Authz/Authorize")
            .body(())
            .unwrap();
        let span = server_span(&req);
        // Without a subscriber the span is disabled, but building it must not panic.
        drop(span);
    }

    #[test]
    fn inject_writes_nothing_without_an_active_trace() {
        let mut i = Inject;
        let req = i.call(tonic::Request::new(())).unwrap();
        assert!(req.metadata().get("traceparent").is_none());
    }
}
