//! Rule generation for a fleet of 1,000 ServiceLevelObjectives: parse, validate, generate the
//! PrometheusRule and serialize it to YAML, as the controller and `slo-warden generate` do.
//!
//! `cargo bench --bench generate` (about 20 s; add `-- --quick` for a faster, rougher figure).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use slo_warden::api::ServiceLevelObjective;
use slo_warden::rules::{Settings, prometheus_rule};
use slo_warden::validate::{ValidSlo, validate};

const FLEET: usize = 1_000;

/// The i-th SLO of a varied fleet: four indicator kinds, several objectives and windows, some
/// with alert labels, annotations or custom burn-rate tiers.
fn slo_yaml(i: usize) -> String {
    let service = format!("svc-{:03}", i % 250);
    let objective = ["99.9", "99.95", "99", "99.5", "99.99", "95"][i % 6];
    let window = ["30d", "28d", "7d", "14d"][i % 4];
    let selector = format!(r#"job="api",service="{service}""#);
    let indicator = match i % 4 {
        0 => format!(
            "    ratio:\n      errors: http_requests_total{{{selector},code=~\"5..\"}}\n      total: http_requests_total{{{selector}}}\n"
        ),
        1 => format!(
            "    ratio:\n      good: sum(rate(http_requests_total{{{selector},code!~\"5..\"}}[$window]))\n      total: http_requests_total{{{selector}}}\n"
        ),
        2 => format!(
            "    latency:\n      histogram: http_request_duration_seconds{{{selector}}}\n      threshold: {}\n",
            ["300ms", "1s", "250ms"][i % 3]
        ),
        _ => format!("    raw:\n      errorRatio: 1 - avg_over_time(probe_success{{{selector}}}[$window])\n"),
    };
    let mut alerting = String::new();
    if i.is_multiple_of(3) {
        alerting.push_str(&format!(
            "    labels:\n      team: team-{}\n    annotations:\n      runbook_url: https://runbooks.example.com/{service}\n",
            i % 17
        ));
    }
    if i.is_multiple_of(5) {
        alerting.push_str(
            "    burnRates:\n    - {long: 1h, short: 5m, factor: 14.4, severity: page}\n    - {long: 6h, short: 30m, factor: 6, severity: page}\n    - {long: 3d, short: 6h, factor: 1, severity: ticket}\n",
        );
    }
    if i.is_multiple_of(7) {
        alerting.push_str("    noTraffic:\n      for: 15m\n");
    }
    let alerting = if alerting.is_empty() {
        String::new()
    } else {
        format!("  alerting:\n{alerting}")
    };
    format!(
        "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata:\n  name: {service}-slo-{i}\n  namespace: ns-{}\nspec:\n  service: {service}\n  description: SLO number {i}.\n  objective: {objective}\n  window: {window}\n  indicator:\n{indicator}{alerting}",
        i % 40
    )
}

fn fleet_yaml() -> Vec<String> {
    (0..FLEET).map(slo_yaml).collect()
}

fn parse(doc: &str) -> ServiceLevelObjective {
    serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("bench SLO does not parse: {e}\n{doc}"))
}

fn valid(slo: &ServiceLevelObjective) -> ValidSlo {
    validate(slo).unwrap_or_else(|p| panic!("bench SLO {:?} is invalid: {p:?}", slo.metadata.name))
}

/// Every stage, as the controller runs it for each SLO; returns the bytes of YAML produced.
fn parse_validate_generate(docs: &[String]) -> usize {
    let none = Settings::default();
    docs.iter()
        .map(|doc| {
            let slo = parse(doc);
            let rule = prometheus_rule(&valid(&slo), &none);
            serde_yaml::to_string(&rule).expect("serialize").len()
        })
        .sum()
}

fn generate_only(slos: &[ValidSlo]) -> usize {
    let none = Settings::default();
    slos.iter().map(|s| prometheus_rule(s, &none).spec.groups.len()).sum()
}

fn bench(c: &mut Criterion) {
    let docs = fleet_yaml();
    let slos: Vec<ServiceLevelObjective> = docs.iter().map(|d| parse(d)).collect();
    let valid_slos: Vec<ValidSlo> = slos.iter().map(valid).collect();

    // One plain pass first, so the figure is visible even in --quick runs and logs.
    let start = Instant::now();
    let bytes = parse_validate_generate(&docs);
    let rules: usize = valid_slos
        .iter()
        .map(|s| {
            prometheus_rule(s, &Settings::default())
                .spec
                .groups
                .iter()
                .map(|g| g.rules.len())
                .sum::<usize>()
        })
        .sum();
    eprintln!(
        "generate: {FLEET} SLOs -> {rules} rules, {:.1} MiB of YAML; one cold pass {:.1} ms",
        bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64() * 1e3
    );

    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(FLEET as u64));
    group.bench_with_input(
        BenchmarkId::new("parse+validate+rules+yaml", FLEET),
        &docs,
        |b, docs| b.iter(|| black_box(parse_validate_generate(black_box(docs)))),
    );
    group.bench_with_input(BenchmarkId::new("validate", FLEET), &slos, |b, slos| {
        b.iter(|| black_box(slos.iter().map(|s| valid(s).tiers.len()).sum::<usize>()))
    });
    group.bench_with_input(BenchmarkId::new("rules", FLEET), &valid_slos, |b, slos| {
        b.iter(|| black_box(generate_only(black_box(slos))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
