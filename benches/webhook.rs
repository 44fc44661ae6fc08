//! The admission webhook under abuse: the real server (`admission::serve_tls`, its limits and
//! its review handling) runs in a child process, with a fake API server in the same process
//! answering its Namespace reads (a namespace frozen by `bench/checkout`). This process then
//! drives it for a while with clients trickling headers, clients trickling 1.9 MB bodies,
//! oversized bodies and many concurrent 1.9 MB reviews sent at full speed, while honest clients
//! send realistic reviews (Deployment image changes and scalings) on kept-alive connections.
//!
//! It prints the server's RSS (idle, peak) and the p50/p99 latency of honest reviews during the
//! abuse, and exits 1 when a goal is missed: honest reviews under 100 ms at p99, every honest
//! review answered as it should be, and the server's growth under abuse plus the operator's
//! steady RSS at 10,000 SLOs (README, Scale) within the chart's memory limit.
//!
//! `cargo bench --bench webhook` (about 30 s; `-- --seconds N` for longer).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Honest reviews must be answered within this at p99.
const P99_GOAL: Duration = Duration::from_millis(100);
/// The operator's steady RSS at 10,000 SLOs (README, Scale: 150 MiB at most), which the
/// webhook's growth under abuse comes on top of.
const OPERATOR_STEADY_MIB: f64 = 150.0;

const SLOW_HEADERS: usize = 50;
const SLOW_BODIES: usize = 20;
const OVERSIZED: usize = 4;
/// Clients sending 1.9 MB reviews at full speed (`--uploads N` for another number).
const UPLOADS: usize = 40;
const HONEST: usize = 4;
const UPLOAD_BYTES: usize = 1_900_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        serve(&args[at + 1], &args[at + 2]);
        return;
    }
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|at| args.get(at + 1)?.parse().ok())
        .unwrap_or(20);
    let uploads = args
        .iter()
        .position(|a| a == "--uploads")
        .and_then(|at| args.get(at + 1)?.parse().ok())
        .unwrap_or(UPLOADS);
    std::process::exit(drive(Duration::from_secs(seconds), uploads));
}

// ---- The server ---------------------------------------------------------------------------

fn serve(port: &str, dir: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let api_url = format!("http://{}", api.local_addr().expect("address"));
        let app = axum::Router::new().route(
            "/api/v1/namespaces/{name}",
            axum::routing::get(|axum::extract::Path(name): axum::extract::Path<String>| async move {
                axum::Json(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name,
                        "labels": {"slo.warden.dev/frozen": "true"},
                        "annotations": {"slo.warden.dev/frozen-by": "bench/checkout",
                                        "slo.warden.dev/frozen-at": "2026-12-01T10:00:00Z",
                                        "slo.warden.dev/freeze-reason": "budget exhausted"}},
                }))
            }),
        );
        tokio::spawn(async move { axum::serve(api, app).await });
        let config = kube::Config::new(api_url.parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let webhook = Arc::new(slo_warden::admission::Webhook {
            client,
            stores: slo_warden::cache::Stores(vec![]),
            metrics: slo_warden::metrics::Metrics::default(),
            identity: Default::default(),
            allow_cross_namespace_sli: false,
        });
        let tls =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(format!("{dir}/tls.crt"), format!("{dir}/tls.key"))
                .await
                .expect("certificate");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let shutdown = tokio_util::sync::CancellationToken::new();
        slo_warden::admission::serve_tls(addr, tls, webhook, shutdown)
            .await
            .expect("serve");
    });
}

// ---- The clients --------------------------------------------------------------------------

fn review(uid: &str, operation: &str, object: &serde_json::Value, old: &serde_json::Value) -> Vec<u8> {
    // As the API server writes it: request.uid first.
    format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"{uid}","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"resource":{{"group":"apps","version":"v1","resource":"deployments"}},"requestKind":{{"group":"apps","version":"v1","kind":"Deployment"}},"requestResource":{{"group":"apps","version":"v1","resource":"deployments"}},"name":"web","namespace":"shop","operation":"{operation}","userInfo":{{"username":"dev","groups":["system:authenticated"]}},"object":{object},"oldObject":{old},"dryRun":false,"options":{{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}}}}}}"#
    )
    .into_bytes()
}

/// A Deployment as the API server sends it (defaults filled in), with `labels` extra labels.
fn deployment(image: &str, replicas: u32, labels: usize) -> serde_json::Value {
    let mut meta_labels = serde_json::Map::new();
    meta_labels.insert("app".into(), "web".into());
    for i in 0..labels {
        meta_labels.insert(format!("bench.example.com/pad-{i:06}"), "x".repeat(50).into());
    }
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "0d2c1a0e-6a8e-4c1e-9f1a-3d4f5a6b7c8d",
                     "resourceVersion": "123456", "generation": 7,
                     "creationTimestamp": "2026-11-01T10:00:00Z", "labels": meta_labels,
                     "annotations": {"deployment.kubernetes.io/revision": "6"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                        "env": [{"name": "MODE", "value": "production"}],
                                        "terminationMessagePath": "/dev/termination-log",
                                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                                       "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                                       "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"}}},
        "status": {"observedGeneration": 7, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                   "availableReplicas": 2}
    })
}

fn request(path: &str, content_length: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

struct Target {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl Target {
    async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        self.tls.connect(name, tcp).await
    }
}

/// Sends a request and reads its answer at the same time (a server may answer before it has
/// read a body it refuses).
async fn exchange(
    stream: TlsStream<TcpStream>,
    path: &str,
    body: &[u8],
) -> (Option<TlsStream<TcpStream>>, std::io::Result<(u16, Vec<u8>)>) {
    let (mut r, mut w) = tokio::io::split(stream);
    let send = async {
        w.write_all(&request(path, body.len())).await?;
        w.write_all(body).await?;
        w.flush().await
    };
    let (sent, answer) = tokio::join!(send, response(&mut r));
    let stream = sent.is_ok().then(|| r.unsplit(w));
    (stream, answer)
}

/// Reads one response: its status and body.
async fn response(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, buf[head_end..head_end + length].to_vec()))
}

#[derive(Default)]
struct Tally {
    slow_header_cuts: AtomicU64,
    slow_body_cuts: AtomicU64,
    oversized_refused: AtomicU64,
    uploads_judged: AtomicU64,
    uploads_refused_busy: AtomicU64,
    uploads_other: AtomicU64,
    uploads_cut: AtomicU64,
}

/// Sends headers a byte at a time until the server hangs up, again and again.
async fn slow_headers(target: Arc<Target>, tally: Arc<Tally>, until: Instant) {
    while Instant::now() < until {
        let Ok(mut s) = target.connect().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for byte in request("/validate/releases", 1000) {
            if Instant::now() >= until || s.write_all(&[byte]).await.is_err() || s.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tally.slow_header_cuts.fetch_add(1, Ordering::Relaxed);
    }
}

/// Declares a 1.9 MB review and sends it a KiB every 100 ms until the server gives up.
async fn slow_body(target: Arc<Target>, tally: Arc<Tally>, body: Arc<Vec<u8>>, until: Instant) {
    while Instant::now() < until {
        let Ok(mut s) = target.connect().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if s.write_all(&request("/validate/releases", body.len())).await.is_err() {
            continue;
        }
        for piece in body.chunks(1024) {
            if Instant::now() >= until || s.write_all(piece).await.is_err() || s.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tally.slow_body_cuts.fetch_add(1, Ordering::Relaxed);
    }
}

/// Declares 8 MiB, over the limit, and sends it at full speed.
async fn oversized(target: Arc<Target>, tally: Arc<Tally>, body: Arc<Vec<u8>>, until: Instant) {
    while Instant::now() < until {
        let Ok(s) = target.connect().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if let (_, Ok((200, answer))) = exchange(s, "/validate/releases", &body).await
            && String::from_utf8_lossy(&answer).contains("over the webhook's limit")
        {
            tally.oversized_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// 1.9 MB reviews (a Deployment with 1.9 MB of labels and a new image) at full speed.
async fn upload(target: Arc<Target>, tally: Arc<Tally>, body: Arc<Vec<u8>>, until: Instant) {
    while Instant::now() < until {
        let Ok(s) = target.connect().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = Some(s);
        while let Some(s) = stream.take()
            && Instant::now() < until
        {
            let (kept, answer) = exchange(s, "/validate/releases", &body).await;
            stream = kept;
            let counter = match answer {
                Ok((200, answer)) => {
                    let answer = String::from_utf8_lossy(&answer);
                    if answer.contains("is busy reading other large reviews") {
                        &tally.uploads_refused_busy
                    } else if answer.contains("frozen since") {
                        &tally.uploads_judged
                    } else {
                        &tally.uploads_other
                    }
                }
                Ok(_) => &tally.uploads_other,
                // Mostly a refused review's connection, closed with its body unread.
                Err(_) => &tally.uploads_cut,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Realistic reviews on a kept-alive connection, one every 20 ms; the latency of each and
/// whether its answer is the right one (an image change refused, a scaling allowed).
async fn honest(target: Arc<Target>, until: Instant, worker: usize) -> (Vec<Duration>, Vec<String>) {
    let old = deployment("web:1", 2, 0);
    let image = review("honest-image", "UPDATE", &deployment("web:2", 2, 0), &old);
    let scale = review("honest-scale", "UPDATE", &deployment("web:1", 5, 0), &old);
    let (mut latencies, mut wrong) = (Vec::new(), Vec::new());
    let mut stream = None;
    let mut i = worker;
    while Instant::now() < until {
        i += 1;
        let (body, want) = if i.is_multiple_of(2) {
            (&image, "\"allowed\":false")
        } else {
            (&scale, "\"allowed\":true")
        };
        let started = Instant::now();
        let result = async {
            if stream.is_none() {
                stream = Some(target.connect().await?);
            }
            let s = stream.as_mut().expect("connected");
            let mut message = request("/validate/releases", body.len());
            message.extend_from_slice(body);
            s.write_all(&message).await?;
            response(s).await
        }
        .await;
        if result.is_err() {
            stream = None;
        }
        let took = started.elapsed();
        match result {
            Ok((200, answer)) if String::from_utf8_lossy(&answer).contains(want) => latencies.push(took),
            Ok((status, answer)) => {
                latencies.push(took);
                wrong.push(format!(
                    "{status} {}",
                    String::from_utf8_lossy(&answer).chars().take(200).collect::<String>()
                ));
            }
            Err(e) => {
                latencies.push(took);
                wrong.push(format!("{e}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (latencies, wrong)
}

/// User and system CPU seconds of process `pid` ("self" for this one).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3, utime and stime 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// `resources.limits.memory` of the chart's values, in MiB.
fn chart_limit_mib() -> Option<f64> {
    let values = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/charts/slo-warden/values.yaml")).ok()?;
    let values: serde_yaml::Value = serde_yaml::from_str(&values).ok()?;
    let limit = values["resources"]["limits"]["memory"].as_str()?;
    limit.strip_suffix("Mi")?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn drive(seconds: Duration, uploads: usize) -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("slo-warden-webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let names = vec!["127.0.0.1".to_string()];
    let bundle = slo_warden::admission::certs::issue(None, &names, jiff::Timestamp::now()).expect("certificate");
    std::fs::write(dir.join("tls.crt"), &bundle.cert).expect("write");
    std::fs::write(dir.join("tls.key"), &bundle.key).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--serve", &port.to_string(), &dir.to_string_lossy()])
        // As the operator tunes mimalloc (main.rs).
        .env("MIMALLOC_PURGE_DELAY", "0")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env("RUST_LOG", "error")
        .spawn()
        .expect("start the webhook");
    let pid = child.id();

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(bundle.ca_cert.as_bytes()).expect("CA");
    roots.add(ca).expect("CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let target = Arc::new(Target {
        addr: format!("127.0.0.1:{port}").parse().expect("address"),
        tls: TlsConnector::from(Arc::new(config)),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = runtime.block_on(async {
        // Up, and warm: a few hundred honest reviews.
        let start = Instant::now();
        while target.connect().await.is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                eprintln!("the webhook did not start");
                return 2;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let warm = honest(target.clone(), Instant::now() + Duration::from_secs(3), 0).await;
        if !warm.1.is_empty() {
            eprintln!("honest reviews answered wrongly before any abuse: {:?}", &warm.1[..warm.1.len().min(3)]);
            return 1;
        }
        let idle = rss_mib(pid).unwrap_or(0.0);

        let cpu_before = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
        let until = Instant::now() + seconds;
        let tally = Arc::new(Tally::default());
        let old_big = deployment("web:1", 2, UPLOAD_BYTES / 2 / 80);
        let upload_body = Arc::new(review("abuse-upload", "UPDATE", &deployment("web:2", 2, UPLOAD_BYTES / 2 / 80), &old_big));
        let huge = deployment("web:2", 2, 9 * 1024 * 1024 / 80);
        let oversized_body = Arc::new(review("abuse-oversized", "UPDATE", &huge, &serde_json::Value::Null));
        drop(huge);
        let mut abuse = Vec::new();
        for _ in 0..SLOW_HEADERS {
            abuse.push(tokio::spawn(slow_headers(target.clone(), tally.clone(), until)));
        }
        for _ in 0..SLOW_BODIES {
            abuse.push(tokio::spawn(slow_body(target.clone(), tally.clone(), upload_body.clone(), until)));
        }
        for _ in 0..OVERSIZED {
            abuse.push(tokio::spawn(oversized(target.clone(), tally.clone(), oversized_body.clone(), until)));
        }
        for _ in 0..uploads {
            abuse.push(tokio::spawn(upload(target.clone(), tally.clone(), upload_body.clone(), until)));
        }
        let peak = Arc::new(AtomicU64::new(idle.to_bits()));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                while Instant::now() < until {
                    if let Some(now) = rss_mib(pid)
                        && now > f64::from_bits(peak.load(Ordering::Relaxed))
                    {
                        peak.store(now.to_bits(), Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        // The honest clients start once the abuse is under way.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // On a runtime of their own, as the API server is a process of its own: the abuse
        // tasks' TLS work must not delay them here rather than in the webhook.
        let honest_target = target.clone();
        let honest = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let clients = (0..HONEST).map(|w| honest(honest_target.clone(), until, w));
                futures::future::join_all(clients).await
            })
        });
        let (mut latencies, mut wrong) = (Vec::new(), Vec::new());
        while !honest.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (l, w) in honest.join().expect("honest clients") {
            latencies.extend(l);
            wrong.extend(w);
        }
        for a in abuse {
            a.abort();
        }
        let _ = sampler.await;
        let peak = f64::from_bits(peak.load(Ordering::Relaxed));
        let cpu = (
            cpu_seconds(&pid.to_string()) - cpu_before.0,
            cpu_seconds("self") - cpu_before.1,
        );
        latencies.sort();
        let (p50, p99, max) = (
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );
        let limit = chart_limit_mib();
        let needed = OPERATOR_STEADY_MIB + (peak - idle);
        let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
        println!("webhook under abuse for {} s ({SLOW_HEADERS} trickling headers, {SLOW_BODIES} trickling 1.9 MB bodies, {OVERSIZED} sending 8 MiB, {uploads} sending 1.9 MB reviews at full speed)", seconds.as_secs());
        println!(
            "  abuse: {} trickled-header connections cut, {} trickled bodies cut, {} oversized refused, {} 1.9 MB reviews judged, {} refused as busy, {} cut off unanswered, {} other",
            t(&tally.slow_header_cuts),
            t(&tally.slow_body_cuts),
            t(&tally.oversized_refused),
            t(&tally.uploads_judged),
            t(&tally.uploads_refused_busy),
            t(&tally.uploads_cut),
            t(&tally.uploads_other)
        );
        println!(
            "  honest reviews: {} sent, {} answered wrongly; latency p50 {:.1} ms, p99 {:.1} ms (goal < {} ms), max {:.1} ms",
            latencies.len(),
            wrong.len(),
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            P99_GOAL.as_millis(),
            max.as_secs_f64() * 1000.0
        );
        println!(
            "  webhook RSS: idle {idle:.1} MiB, peak {peak:.1} MiB (+{:.1}); with the operator's steady {OPERATOR_STEADY_MIB} MiB: {needed:.1} MiB, chart limit {}",
            peak - idle,
            limit.map(|l| format!("{l} MiB")).unwrap_or_else(|| "unreadable".into())
        );
        println!(
            "  CPU during the abuse: webhook {:.1} s, these clients {:.1} s (of {} s × 2 cores)",
            cpu.0,
            cpu.1,
            seconds.as_secs()
        );
        let _ = std::io::stdout().flush();
        let mut missed = Vec::new();
        if p99 >= P99_GOAL {
            missed.push("honest p99");
        }
        if !wrong.is_empty() {
            eprintln!("wrong answers, e.g. {:?}", &wrong[..wrong.len().min(3)]);
            missed.push("honest answers");
        }
        if limit.is_none_or(|l| needed > l) {
            missed.push("memory within the chart's limit");
        }
        if t(&tally.uploads_judged) == 0 {
            missed.push("large reviews judged at all");
        }
        if missed.is_empty() {
            println!("all goals met");
            0
        } else {
            println!("goals missed: {}", missed.join(", "));
            1
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    code
}
