//! `kms-bench`: a load generator for the KMS JSON 1.1 API.
//!
//! It drives signed (SigV4, service `kms`) Encrypt, Decrypt, GenerateDataKey or
//! CreateKey calls from N concurrent workers over keep-alive HTTP/1.1
//! connections for a fixed duration (or until `--requests` were sent), then prints the request rate, the errors by status and
//! `__type`, latency percentiles and, with `--server-pid`, the server CPU time
//! per request (`--json`: the same as one JSON object, for scripts such as
//! `scripts/bench-matrix.sh`). It talks to loopback endpoints only unless
//! `--allow-remote`.
//! It is a measuring tool, not a test: it asserts nothing about speed.

mod cpu;
mod guard;
mod kms;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use tokio::sync::Semaphore;

use crate::kms::KmsClient;
use crate::stats::{Recorder, ms, percentile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    /// A symmetric key per call (to fill a stack with keys, e.g. for the
    /// memory and startup measurement of `scripts/bench-matrix.sh`).
    CreateKey,
}

impl Op {
    fn operation(self) -> &'static str {
        match self {
            Op::Encrypt => "Encrypt",
            Op::Decrypt => "Decrypt",
            Op::GenerateDataKey => "GenerateDataKey",
            Op::CreateKey => "CreateKey",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "kms-bench",
    about = "Load generator: signed KMS Encrypt/Decrypt/GenerateDataKey at a chosen concurrency"
)]
struct Cli {
    /// KMS endpoint (plain http).
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// Operation to repeat.
    #[arg(long, value_enum, default_value = "encrypt")]
    op: Op,
    /// Concurrent workers, each with at most one request in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Run time in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop once this many requests were sent (or at --duration, whichever is first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Plaintext size in bytes (Encrypt and Decrypt).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size: u32,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Access key id to sign with (the AWS documentation's example by default).
    #[arg(long, default_value = "AKIAIOSFODNN7EXAMPLE")]
    access_key: String,
    /// Secret access key to sign with.
    #[arg(long, default_value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]
    secret_key: String,
    /// Key to use; without it a new key is made with CreateKey.
    #[arg(long)]
    key_id: Option<String>,
    /// Keep-alive connections: at most this many requests are in flight
    /// (HTTP/1.1 carries one at a time) and this many idle connections are kept
    /// (the pool may briefly open one more while a connection is handed back).
    /// Default: --concurrency.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: Option<u32>,
    /// Server process ids whose CPU time (utime+stime from /proc) is divided by the requests.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Allow an endpoint that is not on this machine (127.0.0.0/8, localhost, ::1).
    #[arg(long)]
    allow_remote: bool,
    /// Print one JSON object (req_per_s, p50_ms, p90_ms, p99_ms, errors,
    /// cpu_us_per_req...) instead of the text report, for scripts.
    #[arg(long)]
    json: bool,
}

/// The request body every worker sends (same bytes each time; the signature differs).
async fn prepare_body(cli: &Cli, client: &KmsClient) -> anyhow::Result<Bytes> {
    if cli.op == Op::CreateKey {
        return Ok(Bytes::from_static(b"{}"));
    }
    let key_id = match &cli.key_id {
        Some(k) => k.clone(),
        None => {
            let k = client.create_key().await?;
            if !cli.json {
                println!("key           {k} (created)");
            }
            k
        }
    };
    let plaintext = vec![0x5a_u8; cli.size as usize];
    let body = match cli.op {
        Op::Encrypt => serde_json::json!({ "KeyId": key_id, "Plaintext": B64.encode(&plaintext) }),
        Op::Decrypt => {
            let blob = client.encrypt_once(&key_id, &plaintext).await?;
            serde_json::json!({ "CiphertextBlob": blob })
        }
        Op::GenerateDataKey => serde_json::json!({ "KeyId": key_id, "KeySpec": "AES_256" }),
        Op::CreateKey => unreachable!("CreateKey sends an empty object"),
    };
    Ok(Bytes::from(body.to_string()))
}

async fn worker(
    client: KmsClient,
    operation: &'static str,
    body: Bytes,
    deadline: Instant,
    connections: Arc<Semaphore>,
    tickets: Arc<Tickets>,
) -> Recorder {
    let mut rec = Recorder::default();
    while Instant::now() < deadline && tickets.take() {
        let Ok(_permit) = connections.acquire().await else {
            break;
        };
        // Latency covers signing, the round trip and reading the whole body.
        let start = Instant::now();
        match client.call(operation, body.clone()).await {
            Ok(reply) if reply.is_success() => rec.ok(start.elapsed()),
            Ok(reply) => rec.error(reply.error_label()),
            Err(e) => {
                rec.error(format!("transport: {}", root_cause(&e)));
                // Do not spin on a dead endpoint.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    rec
}

/// How many requests may still be sent (`None`: no limit).
struct Tickets(Option<AtomicU64>);

impl Tickets {
    fn new(limit: Option<u64>) -> Self {
        Self(limit.map(AtomicU64::new))
    }

    /// Whether one more request may go.
    fn take(&self) -> bool {
        self.0.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    }
}

fn root_cause(e: &anyhow::Error) -> String {
    e.chain()
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

struct CpuProbe {
    ticks: u64,
    pids: Vec<String>,
    before: Vec<Duration>,
}

impl CpuProbe {
    fn start(server_pids: &[u32]) -> anyhow::Result<Self> {
        let ticks = cpu::clock_ticks_per_second();
        let mut pids: Vec<String> = server_pids.iter().map(u32::to_string).collect();
        pids.push("self".to_owned());
        let before = pids
            .iter()
            .map(|p| cpu::cpu_time(p, ticks))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            ticks,
            pids,
            before,
        })
    }

    /// CPU time used since `start`, per pid (the last one is this process).
    fn used(&self) -> anyhow::Result<Vec<(String, Duration)>> {
        self.pids
            .iter()
            .zip(&self.before)
            .map(|(p, before)| {
                Ok((
                    p.clone(),
                    cpu::cpu_time(p, self.ticks)?.saturating_sub(*before),
                ))
            })
            .collect()
    }
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let uri = guard::check_endpoint(&cli.endpoint, cli.allow_remote)?;
    if !(cli.duration > 0.0 && cli.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    let connections = cli.connections.unwrap_or(cli.concurrency) as usize;
    let client = KmsClient::new(
        uri,
        &cli.region,
        &cli.access_key,
        &cli.secret_key,
        connections,
    )?;
    let body = prepare_body(&cli, &client).await?;
    let operation = cli.op.operation();

    let probe = CpuProbe::start(&cli.server_pid)?;
    let permits = Arc::new(Semaphore::new(connections));
    let tickets = Arc::new(Tickets::new(cli.requests));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(cli.duration);
    let workers: Vec<_> = (0..cli.concurrency)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                operation,
                body.clone(),
                deadline,
                permits.clone(),
                tickets.clone(),
            ))
        })
        .collect();
    let mut total = Recorder::default();
    for w in workers {
        total.merge(w.await.context("worker panicked")?);
    }
    let elapsed = start.elapsed();
    let cpu = probe.used()?;

    let ok = total.latencies_us.len() as u64;
    let errors = total.error_count();
    let requests = ok + errors;
    let secs = elapsed.as_secs_f64();
    total.latencies_us.sort_unstable();
    if cli.json {
        let report = json_report(&cli, connections, &total, secs, &cpu);
        println!("{report}");
        return Ok(());
    }
    println!("op            {}", operation);
    println!("endpoint      {}", cli.endpoint);
    println!(
        "concurrency   {} ({} connections)",
        cli.concurrency, connections
    );
    println!("duration      {secs:.2} s");
    println!("requests      {requests} ({ok} ok)");
    if errors == 0 {
        println!("errors        0");
    } else {
        let detail: Vec<String> = total
            .errors
            .iter()
            .map(|(label, n)| format!("{label}: {n}"))
            .collect();
        println!("errors        {errors} ({})", detail.join(", "));
    }
    println!(
        "req/s         {:.1} ({:.1} ok)",
        requests as f64 / secs,
        ok as f64 / secs
    );
    let l = &total.latencies_us;
    match (
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        l.last(),
    ) {
        (Some(p50), Some(p90), Some(p99), Some(&max)) => println!(
            "latency ms    p50 {}  p90 {}  p99 {}  max {}",
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max)
        ),
        _ => println!("latency ms    - (no successful request)"),
    }
    let per_request = |d: Duration| {
        if requests == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", d.as_secs_f64() * 1e6 / requests as f64)
        }
    };
    let (servers, client_cpu) = cpu.split_at(cpu.len() - 1);
    if !servers.is_empty() {
        let sum: Duration = servers.iter().map(|(_, d)| *d).sum();
        let each: Vec<String> = servers
            .iter()
            .map(|(pid, d)| format!("pid {pid}: {}", per_request(*d)))
            .collect();
        println!(
            "server cpu    {} us/request ({}); {:.2} cores",
            per_request(sum),
            each.join(", "),
            sum.as_secs_f64() / secs
        );
    }
    let (_, own) = &client_cpu[0];
    println!(
        "client cpu    {} us/request; {:.2} cores",
        per_request(*own),
        own.as_secs_f64() / secs
    );
    Ok(())
}

/// The `--json` report: one object, rates per second, latencies in
/// milliseconds, CPU in microseconds per request (`null` when not measured or
/// when nothing succeeded). `latencies_us` must be sorted.
fn json_report(
    cli: &Cli,
    connections: usize,
    total: &Recorder,
    secs: f64,
    cpu: &[(String, Duration)],
) -> serde_json::Value {
    let ok = total.latencies_us.len() as u64;
    let errors = total.error_count();
    let requests = ok + errors;
    let l = &total.latencies_us;
    let latency_ms = |p: f64| percentile(l, p).map(|us| f64::from(us) / 1000.0);
    let per_request_us =
        |d: Duration| (requests > 0).then(|| d.as_secs_f64() * 1e6 / requests as f64);
    let (servers, client_cpu) = cpu.split_at(cpu.len() - 1);
    let server_sum: Option<Duration> =
        (!servers.is_empty()).then(|| servers.iter().map(|(_, d)| *d).sum());
    let own = client_cpu[0].1;
    serde_json::json!({
        "op": cli.op.operation(),
        "endpoint": cli.endpoint,
        "size": cli.size,
        "concurrency": cli.concurrency,
        "connections": connections,
        "duration_s": secs,
        "requests": requests,
        "ok": ok,
        "errors": errors,
        "errors_by_label": total.errors,
        "req_per_s": requests as f64 / secs,
        "ok_per_s": ok as f64 / secs,
        "p50_ms": latency_ms(50.0),
        "p90_ms": latency_ms(90.0),
        "p99_ms": latency_ms(99.0),
        "max_ms": l.last().map(|&us| f64::from(us) / 1000.0),
        "cpu_us_per_req": server_sum.and_then(per_request_us),
        "server_cores": server_sum.map(|d| d.as_secs_f64() / secs),
        "client_cpu_us_per_req": per_request_us(own),
        "client_cores": own.as_secs_f64() / secs,
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(bench(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_parses_the_documented_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "kms-bench",
            "--endpoint",
            "http://127.0.0.1:4566",
            "--op",
            "generate-data-key",
            "--concurrency",
            "8",
            "--duration",
            "2.5",
            "--server-pid",
            "10,11",
            "--connections",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.op, Op::GenerateDataKey);
        assert_eq!(cli.concurrency, 8);
        assert_eq!(cli.server_pid, vec![10, 11]);
        assert_eq!(cli.connections, Some(2));
        assert_eq!(cli.size, 64);
        assert!(!cli.allow_remote);
        assert!(!cli.json);
        assert!(Cli::try_parse_from(["kms-bench", "--concurrency", "0"]).is_err());
        let cli = Cli::try_parse_from(["kms-bench", "--op", "create-key", "--requests", "10000"])
            .unwrap();
        assert_eq!(cli.op, Op::CreateKey);
        assert_eq!(cli.requests, Some(10_000));
        assert!(Cli::try_parse_from(["kms-bench", "--requests", "0"]).is_err());
    }

    #[test]
    fn tickets_stop_after_the_limit_shared_by_all_workers() {
        let limited = Tickets::new(Some(3));
        let taken = (0..10).filter(|_| limited.take()).count();
        assert_eq!(taken, 3);
        let unlimited = Tickets::new(None);
        assert!((0..10).all(|_| unlimited.take()));
    }

    #[test]
    fn json_report_has_the_documented_fields() {
        let cli = Cli::try_parse_from(["kms-bench", "--json", "--size", "4096"]).unwrap();
        assert!(cli.json);
        let mut total = Recorder::default();
        for us in [1000, 2000, 3000, 4000] {
            total.ok(Duration::from_micros(us));
        }
        total.error("400 ValidationException".into());
        let cpu = vec![
            ("42".to_owned(), Duration::from_millis(5)),
            ("self".to_owned(), Duration::from_millis(1)),
        ];
        let v = json_report(&cli, 16, &total, 2.0, &cpu);
        assert_eq!(v["op"], "Encrypt");
        assert_eq!(v["size"], 4096);
        assert_eq!(v["requests"], 5);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["errors_by_label"]["400 ValidationException"], 1);
        assert_eq!(v["req_per_s"], 2.5);
        assert_eq!(v["p50_ms"], 2.0);
        assert_eq!(v["p90_ms"], 4.0);
        assert_eq!(v["p99_ms"], 4.0);
        assert_eq!(v["cpu_us_per_req"], 1000.0);
        assert_eq!(v["client_cpu_us_per_req"], 200.0);

        // Without --server-pid and without a success: nulls, not zeros.
        let mut failed = Recorder::default();
        failed.error("transport: connection refused".into());
        let cpu = vec![("self".to_owned(), Duration::ZERO)];
        let v = json_report(&cli, 16, &failed, 1.0, &cpu);
        assert!(v["cpu_us_per_req"].is_null());
        assert!(v["p99_ms"].is_null());
        assert_eq!(v["errors"], 1);
    }
}
