//! What the gateway tells about each API call besides the response: the
//! fields of its trace span and its OpenTelemetry metrics (requests and errors
//! by service, operation and exception; latency). Never a secret: labels are
//! service, operation, account, endpoint id and error code only.

use std::sync::LazyLock;
use std::time::Duration;

use kms_telemetry::{Counter, Histogram, KeyValue};

static REQUESTS: LazyLock<Counter<u64>> = LazyLock::new(|| {
    kms_telemetry::meter("kms-gateway")
        .u64_counter("kms.requests")
        .with_description("API calls by service, operation and outcome (exception name or OK)")
        .build()
});

static DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
    kms_telemetry::meter("kms-gateway")
        .f64_histogram("kms.request.duration")
        .with_unit("s")
        .with_description("API call latency at the gateway, from request to response")
        .build()
});

/// The service and operation of a call, once known.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    service: String,
    operation: String,
}

impl Labels {
    pub fn new(service: &str, operation: &str) -> Self {
        Self {
            service: service.to_owned(),
            operation: operation.to_owned(),
        }
    }

    /// Name the current (`api.request`) span after the operation and add the
    /// caller's account and the endpoint it came through.
    pub fn record_on_current_span(&self, account: &str, vpce_id: &str) {
        let span = tracing::Span::current();
        if span.is_disabled() {
            // No span is being recorded (no trace exporter, no span logging).
            return;
        }
        kms_telemetry::rename_current_span(format!("{}.{}", self.service, self.operation));
        span.record("aws.service", self.service.as_str());
        span.record("aws.operation", self.operation.as_str());
        span.record("aws.account", account);
        if !vpce_id.is_empty() {
            span.record("aws.vpce_id", vpce_id);
        }
    }
}

/// The `Action` of a Query-protocol body (EC2, IAM, STS), for labels only.
pub fn query_action(body: &[u8]) -> &str {
    std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
        .filter(|a| a.bytes().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("")
}

/// Count the call and its latency.
pub fn record_request(labels: &Labels, error_code: Option<&str>, status: u16, elapsed: Duration) {
    let outcome = error_code.unwrap_or(if status < 400 { "OK" } else { "error" });
    let attrs = [
        KeyValue::new("aws.service", labels.service.clone()),
        KeyValue::new("aws.operation", labels.operation.clone()),
        KeyValue::new("outcome", outcome.to_owned()),
        KeyValue::new("http.status_code", i64::from(status)),
    ];
    REQUESTS.add(1, &attrs);
    DURATION.record(elapsed.as_secs_f64(), &attrs[..2]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_action_is_read_from_the_form_body() {
        assert_eq!(
            query_action(b"Action=CreateVpc&Version=2016-11-15"),
            "CreateVpc"
        );
        assert_eq!(query_action(b"Version=1&Action=GetUser"), "GetUser");
        assert_eq!(query_action(b"Action=%3Cx%3E"), "");
        assert_eq!(query_action(b"nothing"), "");
    }
}
