//! The web page and JSON API over the stored traces.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use crate::store::{Span, Store};

pub async fn serve(listener: tokio::net::TcpListener, store: Arc<Store>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let store = Arc::clone(&store);
                async move { Ok::<_, Infallible>(route(&store, &req)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", v.to_string())
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn route(store: &Store, req: &hyper::Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != http::Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let path = req.uri().path();
    match path {
        "/" => respond(StatusCode::OK, "text/html; charset=utf-8", index(store)),
        "/api/traces" => match query_param(req.uri().query(), "request_id") {
            Some(id) => match store.trace_by_request_id(id) {
                Some(spans) => json_response(StatusCode::OK, trace_json(&spans)),
                None => json_response(StatusCode::NOT_FOUND, json!({"error": "no such trace"})),
            },
            None => json_response(
                StatusCode::OK,
                json!({"traces": store.recent(100).into_iter().map(|(id, root, services, n)| json!({
                    "traceId": id,
                    "root": root.map(|r| r.to_json()),
                    "services": services,
                    "spanCount": n,
                })).collect::<Vec<_>>()}),
            ),
        },
        "/api/metrics" => json_response(
            StatusCode::OK,
            json!({"metrics": store.metrics().into_iter().map(|(s, n, c)| json!({
                "service": s, "name": n, "dataPoints": c})).collect::<Vec<_>>()}),
        ),
        _ => {
            if let Some(id) = path.strip_prefix("/api/traces/") {
                return match store.trace(id) {
                    Some(spans) => json_response(StatusCode::OK, trace_json(&spans)),
                    None => json_response(StatusCode::NOT_FOUND, json!({"error": "no such trace"})),
                };
            }
            if let Some(id) = path.strip_prefix("/trace/") {
                return match store.trace(id) {
                    Some(spans) => respond(
                        StatusCode::OK,
                        "text/html; charset=utf-8",
                        trace_page(id, &spans),
                    ),
                    None => respond(
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        "no such trace\n".into(),
                    ),
                };
            }
            respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into())
        }
    }
}

fn trace_json(spans: &[Span]) -> serde_json::Value {
    json!({
        "traceId": spans.first().map(|s| s.trace_id.clone()).unwrap_or_default(),
        "spans": spans.iter().map(Span::to_json).collect::<Vec<_>>(),
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}\
.err{color:#b00}.svc{color:#555}ul{list-style:none;padding-left:1.2em}code{font-size:90%}</style>";

fn index(store: &Store) -> String {
    let mut html = format!(
        "<!doctype html><title>kms-traces</title>{STYLE}<h1>Traces</h1>\
         <p>Newest first. JSON: <code>/api/traces?request_id=&lt;x-amzn-RequestId&gt;</code>, \
         <code>/api/metrics</code>.</p><table><tr><th>root span</th><th>request id</th>\
         <th>error</th><th>services</th><th>spans</th><th>duration</th></tr>"
    );
    for (id, root, services, n) in store.recent(200) {
        let (name, request_id, error, duration) = match &root {
            Some(r) => (
                r.name.clone(),
                r.attributes
                    .get("aws.request_id")
                    .cloned()
                    .unwrap_or_default(),
                r.attributes
                    .get("aws.error_code")
                    .cloned()
                    .unwrap_or_default(),
                format!("{:.2} ms", r.end_ns.saturating_sub(r.start_ns) as f64 / 1e6),
            ),
            None => (
                "(root not received)".into(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        let _ = write!(
            html,
            "<tr><td><a href=\"/trace/{id}\">{}</a></td><td><code>{}</code></td>\
             <td class=err>{}</td><td class=svc>{}</td><td>{n}</td><td>{duration}</td></tr>",
            escape(&name),
            escape(&request_id),
            escape(&error),
            escape(&services.join(", "))
        );
    }
    html.push_str("</table>");
    html
}

fn trace_page(id: &str, spans: &[Span]) -> String {
    let mut html = format!(
        "<!doctype html><title>trace {id}</title>{STYLE}<p><a href=\"/\">all traces</a></p>\
         <h1>Trace <code>{}</code></h1>",
        escape(id)
    );
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.parent_span_id.is_empty() || !spans.iter().any(|p| p.span_id == s.parent_span_id)
        })
        .collect();
    html.push_str("<ul>");
    for r in roots {
        tree(&mut html, r, spans, t0);
    }
    html.push_str("</ul>");
    html
}

fn tree(html: &mut String, span: &Span, spans: &[Span], t0: u64) {
    let attrs: Vec<String> = span
        .attributes
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("code.")
                && !k.starts_with("thread.")
                && *k != "busy_ns"
                && *k != "idle_ns"
        })
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    let _ = write!(
        html,
        "<li><b>{}</b> <span class=svc>{}</span> +{:.2} ms, {:.2} ms <code>{}</code><ul>",
        escape(&span.name),
        escape(&span.service),
        span.start_ns.saturating_sub(t0) as f64 / 1e6,
        span.end_ns.saturating_sub(span.start_ns) as f64 / 1e6,
        attrs.join(" ")
    );
    for child in spans.iter().filter(|s| s.parent_span_id == span.span_id) {
        tree(html, child, spans, t0);
    }
    html.push_str("</ul></li>");
}
