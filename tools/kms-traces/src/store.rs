//! The spans received, grouped by trace, bounded in memory (oldest traces go first).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde_json::{Value as Json, json};

/// One span, flattened with its service's name.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    pub fn to_json(&self) -> Json {
        json!({
            "service": self.service,
            "name": self.name,
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id,
            "startTimeUnixNano": self.start_ns,
            "endTimeUnixNano": self.end_ns,
            "attributes": self.attributes,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Spans by trace id, with the arrival order of traces for eviction.
#[derive(Default)]
struct Inner {
    traces: HashMap<String, Vec<Span>>,
    order: VecDeque<String>,
    metric_points: BTreeMap<(String, String), u64>,
}

pub struct Store {
    inner: Mutex<Inner>,
    max_traces: usize,
}

impl Store {
    pub fn new(max_traces: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_traces: max_traces.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, req: ExportTraceServiceRequest) {
        let mut inner = self.lock();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(any_to_string)
                .unwrap_or_else(|| "unknown".to_owned());
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let span = Span {
                        service: service.clone(),
                        name: s.name,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        start_ns: s.start_time_unix_nano,
                        end_ns: s.end_time_unix_nano,
                        attributes: s
                            .attributes
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key.clone(),
                                    kv.value.as_ref().map(any_to_string).unwrap_or_default(),
                                )
                            })
                            .collect(),
                    };
                    if !inner.traces.contains_key(&span.trace_id) {
                        inner.order.push_back(span.trace_id.clone());
                    }
                    inner
                        .traces
                        .entry(span.trace_id.clone())
                        .or_default()
                        .push(span);
                }
            }
        }
        while inner.order.len() > self.max_traces {
            if let Some(old) = inner.order.pop_front() {
                inner.traces.remove(&old);
            }
        }
    }

    /// Count metric data points by (service, metric name).
    pub fn add_metric_points(&self, service: &str, name: &str, points: u64) {
        *self
            .lock()
            .metric_points
            .entry((service.to_owned(), name.to_owned()))
            .or_default() += points;
    }

    pub fn metrics(&self) -> Vec<(String, String, u64)> {
        self.lock()
            .metric_points
            .iter()
            .map(|((s, n), c)| (s.clone(), n.clone(), *c))
            .collect()
    }

    pub fn trace(&self, trace_id: &str) -> Option<Vec<Span>> {
        let mut spans = self.lock().traces.get(trace_id)?.clone();
        spans.sort_by_key(|s| s.start_ns);
        Some(spans)
    }

    /// The trace whose spans carry `aws.request_id = request_id`.
    pub fn trace_by_request_id(&self, request_id: &str) -> Option<Vec<Span>> {
        let id = {
            let inner = self.lock();
            inner
                .traces
                .iter()
                .find(|(_, spans)| {
                    spans.iter().any(|s| {
                        s.attributes.get("aws.request_id").map(String::as_str) == Some(request_id)
                    })
                })
                .map(|(id, _)| id.clone())?
        };
        self.trace(&id)
    }

    /// Summaries of the newest traces first: (trace id, root span, services, span count).
    pub fn recent(&self, n: usize) -> Vec<(String, Option<Span>, Vec<String>, usize)> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .rev()
            .take(n)
            .filter_map(|id| {
                let spans = inner.traces.get(id)?;
                let root = spans.iter().find(|s| s.parent_span_id.is_empty()).cloned();
                let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
                services.sort();
                services.dedup();
                Some((id.clone(), root, services, spans.len()))
            })
            .collect()
    }
}
