//! One poll cycle's answers at 10,000 SLOs, read as the operator reads them: the four answers
//! Prometheus gives (as JSON, shaped as Prometheus shapes them) decoded and split by SLO, with
//! every series checked, each answer handed over in chunks as the HTTP client hands it over.
//! Measures the time of a cycle and the heap it takes at its peak, beyond what was live before
//! it (the answers' bodies left out: the operator never holds one whole).
//!
//! `cargo bench --bench poll` (about 15 s); `-- --slos N` for another fleet size. Exits 1 when
//! a goal is missed: a cycle within 1 s of one core, and a peak within 64 MiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use slo_warden::budget::answer::{Reading, into};
use slo_warden::budget::queries::{Expect, Group, Split};

/// Counts the bytes live on the heap and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, size) };
        if !q.is_null() {
            if size >= layout.size() {
                let live = LIVE.fetch_add(size - layout.size(), Ordering::Relaxed) + size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - size, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;
/// Goals for one cycle at 10,000 SLOs.
const GOAL_SECONDS: f64 = 1.0;
const GOAL_PEAK_MIB: f64 = 64.0;

/// The HTTP client hands a body over in chunks of about this size.
const CHUNK: usize = 16 * 1024;

/// Evaluation times (seconds) of the newest sample; groups are evaluated on their grid.
const NOW: i64 = 1_796_000_000;

/// A range-vector answer as Prometheus writes it: one series per (SLO, record name), each with
/// `samples` samples `interval` apart, labelled as slo-warden's rules label them.
fn answer(slos: usize, names: &[&str], interval: i64, samples: i64) -> Vec<u8> {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    let mut first = true;
    for i in 0..slos {
        let (ns, slo) = (format!("team-{:03}", i / 100), format!("slo-{:03}", i % 100));
        for name in names {
            if !first {
                out.push(',');
            }
            first = false;
            let t = NOW - NOW.rem_euclid(interval);
            let value = 0.0001 + (i % 20) as f64 * 0.00001;
            let values: Vec<String> = (0..samples)
                .rev()
                .map(|k| format!(r#"[{},"{value}"]"#, t - k * interval))
                .collect();
            out.push_str(&format!(
                r#"{{"metric":{{"__name__":"{name}","namespace":"{ns}","slo":"{slo}","slo_warden":"{ns}/{slo}"}},"values":[{}]}}"#,
                values.join(",")
            ));
        }
    }
    out.push_str("]}}");
    out.into_bytes()
}

/// The firing alerts: one in a hundred SLOs pages.
fn alerts(slos: usize) -> Vec<u8> {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    let t = NOW - NOW.rem_euclid(60);
    for (k, i) in (0..slos).step_by(100).enumerate() {
        let (ns, slo) = (format!("team-{:03}", i / 100), format!("slo-{:03}", i % 100));
        if k > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"metric":{{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"1h","namespace":"{ns}","service":"web","severity":"page","short":"5m","slo":"{slo}","slo_warden":"{ns}/{slo}"}},"values":[[{},"1"],[{t},"1"]]}}"#,
            t - 60
        ));
    }
    out.push_str("]}}");
    out.into_bytes()
}

/// Makes one answer's body.
type Answer = Box<dyn Fn() -> Vec<u8>>;

fn main() {
    let mut slos = 10_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--slos") {
        slos = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--slos N");
    }
    let short = [
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30m",
        "slo:sli_error:ratio_rate1h",
        "slo:sli_error:ratio_rate2h",
        "slo:sli_error:ratio_rate6h",
        // The one-minute tiles the release ledger counts.
        "slo:sli_errors:tile_rate1m",
        "slo:sli_total:tile_rate1m",
    ];
    let long = [
        "slo:sli_error:ratio_rate1d",
        "slo:sli_error:ratio_rate3d",
        "slo:sli_error:ratio_rate30d",
        "slo:error_budget:ratio",
        "slo:error_budget_remaining:ratio",
        "slo:sli_scrape_interval:seconds",
        // The window's requests, for each release's share of the budget.
        "slo:sli_requests:count30d",
    ];
    let long_run = [
        "slo:long_run_burn:ratio",
        "slo:long_run_covered:seconds",
        "slo:window_covered:seconds",
    ];
    let json = Some("application/json");
    let ok = reqwest::StatusCode::OK;

    let mut runs = Vec::new();
    let mut body_mib = 0.0;
    // What the cycle's result (every SLO's samples) keeps until the next cycle's replaces it.
    let mut kept = 0.0;
    for run in 0..5 {
        // The answers one after another, each dropped once read; the first run warms up.
        let answers: [(Option<Group>, Answer); 4] = [
            // As the queries reach ([3m], [11m], [2h1m]): three samples of the minute group, two
            // of the others.
            (Some(Group::Sli), Box::new(move || answer(slos, &short, 60, 3))),
            (Some(Group::Window), Box::new(move || answer(slos, &long, 300, 2))),
            (
                Some(Group::Calibration),
                Box::new(move || answer(slos, &long_run, 3600, 2)),
            ),
            (None, Box::new(move || alerts(slos))),
        ];
        let base = LIVE.load(Ordering::Relaxed);
        let mut took = 0.0;
        let mut peak_above = 0usize;
        // Sized for the SLOs the last cycle read, as the operator sizes it.
        let mut split = Split::with_capacity(Expect::default(), if run == 0 { 0 } else { slos });
        body_mib = 0.0;
        for (group, make) in &answers {
            // As the HTTP client hands it over: chunk by chunk. The body is made whole first,
            // and its bytes are not counted in the peak: the operator never holds them together.
            let mut body = make();
            body.shrink_to_fit();
            body_mib += body.len() as f64 / MIB;
            PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
            let start = Instant::now();
            let mut reading = Reading::new(ok, json).expect("answer");
            for chunk in body.chunks(CHUNK) {
                reading.push(chunk, &mut into(&mut split, *group)).expect("answer");
            }
            reading.finish(&mut into(&mut split, *group)).expect("answer");
            took += start.elapsed().as_secs_f64();
            peak_above = peak_above.max(
                PEAK.load(Ordering::Relaxed)
                    .saturating_sub(base)
                    .saturating_sub(body.len()),
            );
        }
        let start = Instant::now();
        let finished = split.finish();
        let took = took + start.elapsed().as_secs_f64();
        kept = LIVE.load(Ordering::Relaxed).saturating_sub(base) as f64 / MIB;
        assert_eq!(finished.slos.len(), slos);
        assert_eq!(finished.rejected.count, 0, "{:?}", finished.rejected.example);
        assert!(
            finished
                .slos
                .values()
                .all(|s| s.disputed.is_empty() && s.remaining.is_some())
        );
        let firing = finished
            .slos
            .values()
            .filter(|s| !s.firing_severities.is_empty())
            .count();
        assert_eq!(firing, slos.div_ceil(100));
        drop(finished);
        if run > 0 {
            runs.push((took, peak_above as f64 / MIB));
        }
    }
    let seconds = runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let peak = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "poll of {slos} SLOs: answers {body_mib:.1} MiB in all; a cycle read and split in {:.0} ms (best of {}), heap at its peak {peak:.1} MiB above the steady state; its result keeps {kept:.1} MiB",
        seconds * 1000.0,
        runs.len()
    );
    let mut missed = Vec::new();
    if slos == 10_000 && seconds > GOAL_SECONDS {
        missed.push(format!("a cycle took {seconds:.2} s (goal {GOAL_SECONDS} s)"));
    }
    if slos == 10_000 && peak > GOAL_PEAK_MIB {
        missed.push(format!("the peak was {peak:.1} MiB (goal {GOAL_PEAK_MIB} MiB)"));
    }
    if !missed.is_empty() {
        eprintln!("missed: {}", missed.join("; "));
        std::process::exit(1);
    }
}
