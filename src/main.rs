use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use slo_warden::documents::{self, Loaded};
use slo_warden::duration::Duration;
use slo_warden::{break_glass, controller, crds, gate, import, rules, ui};

/// slo-warden: ServiceLevelObjectives in, burn-rate alerts out, error budgets enforced.
#[derive(Parser)]
#[command(name = "slo-warden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the rules for ServiceLevelObjective files (no cluster needed).
    Generate {
        /// Output PrometheusRule objects, or a plain Prometheus rule file.
        #[arg(long, value_enum, default_value_t = Format::Prometheusrule)]
        format: Format,
        /// Label added to each PrometheusRule (repeatable), e.g. release=kube-prometheus-stack.
        #[arg(long = "rule-label", value_parser = controller::args::parse_label)]
        rule_labels: Vec<(String, String)>,
        /// Scrape interval of the SLI's source series, at most 5m (an SLO's spec.scrapeInterval
        /// overrides it): each tile reads one interval more than its length.
        #[arg(long, default_value = "30s", value_parser = controller::args::parse_scrape_interval)]
        scrape_interval: Duration,
        /// How often the burn-rate alerts (and the short-window tiles they read) are evaluated.
        #[arg(long, default_value = "1m", value_parser = controller::args::parse_alert_interval)]
        alert_interval: Duration,
        /// Files with ServiceLevelObjective documents; `-` reads stdin.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Check ServiceLevelObjective, ErrorBudgetPolicy and ErrorBudgetOverride files; prints one
    /// line per problem, its field path first, and exits non-zero if any.
    Validate {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Convert Sloth, Pyrra or OpenSLO SLOs to ServiceLevelObjectives (YAML on stdout). What
    /// cannot be carried over is listed on stderr per SLO; the exit code is 1 when anything
    /// was, 2 when an input cannot be read.
    Import {
        #[arg(value_enum)]
        tool: ImportTool,
        /// Window of SLOs whose source has none: Sloth specs (Sloth's own default is 30d) and
        /// OpenSLO SLOs without a timeWindow.
        #[arg(long, default_value = "30d", value_parser = Duration::parse)]
        window: Duration,
        /// Files to convert; `-` reads stdin.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print the CustomResourceDefinitions, or write them to a directory.
    Crds {
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Lift an ErrorBudgetPolicy for a while: creates an ErrorBudgetOverride (break-glass).
    Override(break_glass::Args),
    /// May a release go now? Asks the namespace's ErrorBudgetPolicies (with your kubeconfig):
    /// exit 0 go, 1 stop (a stage is in force: why, since when, and how to get an override),
    /// 2 unknown (a policy not evaluated or not Ready, its data missing, the cluster
    /// unreachable; see --on-unknown). For CI pipelines and GitOps hooks.
    Check(gate::cli::Args),
    /// Run the controller.
    Run(Box<controller::Args>),
    /// Serve the web UI: every SLO, budget, policy and override of the clusters given, read
    /// only, from watch caches (no Prometheus queries from the browser).
    Ui(ui::Args),
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportTool {
    /// `prometheus/v1` specs and `sloth.slok.dev/v1` PrometheusServiceLevels.
    Sloth,
    /// `pyrra.dev/v1alpha1` ServiceLevelObjectives.
    Pyrra,
    /// `openslo/v1` SLOs, with their SLIs.
    Openslo,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Prometheusrule,
    Rulefile,
}

fn load_all(files: &[String]) -> Result<Loaded, ExitCode> {
    let mut out = Loaded {
        valid: vec![],
        policies: 0,
        overrides: 0,
        problems: vec![],
    };
    let mut found = 0;
    for file in files {
        match documents::read_input(file) {
            Ok(text) => found += documents::load(file, &text, &mut out),
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                return Err(ExitCode::from(2));
            }
        }
    }
    if found == 0 {
        eprintln!(
            "no ServiceLevelObjective, ErrorBudgetPolicy or ErrorBudgetOverride documents in {}",
            files.join(", ")
        );
        return Err(ExitCode::from(2));
    }
    Ok(out)
}

fn run_import(tool: ImportTool, window: Duration, files: &[String]) -> ExitCode {
    let mut inputs = Vec::new();
    for file in files {
        match documents::read_input(file) {
            Ok(text) => inputs.push((file.clone(), text)),
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let docs = match import::documents(&inputs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tool = match tool {
        ImportTool::Sloth => import::Tool::Sloth,
        ImportTool::Pyrra => import::Tool::Pyrra,
        ImportTool::Openslo => import::Tool::Openslo,
    };
    let imported = import::import(tool, &docs, &import::Options { window });
    if imported.is_empty() {
        eprintln!("no {} SLOs in {}", tool.name(), files.join(", "));
        return ExitCode::from(2);
    }
    match import::render(&imported) {
        Ok(yaml) => {
            if let Err(code) = emit(&yaml) {
                return code;
            }
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let mut complete = true;
    for i in &imported {
        if i.slo.is_none() {
            eprintln!("{}: not imported", i.from);
        }
        for lost in &i.lost {
            eprintln!("{}: not carried over: {lost}", i.from);
            complete = false;
        }
        for note in &i.notes {
            eprintln!("{}: note: {note}", i.from);
        }
    }
    let written = imported.iter().filter(|i| i.slo.is_some()).count();
    eprintln!(
        "{written} of {} SLO(s) imported{}",
        imported.len(),
        if complete {
            ""
        } else {
            "; see above for what was not carried over"
        }
    );
    if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// mimalloc, tuned by [`tune_allocator`], hands memory back to the system between polls; with
/// glibc's allocator the peak of one poll of 10,000 SLOs stayed in the process for good. The
/// `system-allocator` feature builds with glibc's instead, for heap profilers that interpose
/// `malloc` (heaptrack), which do not see mimalloc's allocations.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's (v3) `purge_delay`, `arena_eager_commit` and `allow_thp` (the numbers of its
/// `mi_option_e`).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Memory freed after a poll is returned to the system at once, and arenas are committed as
/// they are used. With mimalloc's defaults (purge after a delay, run only when the freeing
/// thread allocates again; arenas committed whole) the operator's RSS at 10,000 SLOs stayed
/// 40 to 70 MiB above what it used.
///
/// No transparent huge pages either: mimalloc asks for them on its arenas (`MADV_HUGEPAGE`), so
/// even where the node's setting is `madvise` (the common default) every 2 MiB of the arena the
/// operator touched, or that khugepaged collapsed around a few live pages, was resident as a
/// whole: 12 of the 13.5 MiB an idle operator used. The process asks the kernel for none
/// (`PR_SET_THP_DISABLE`, which mimalloc itself would only set before `main`), and mimalloc
/// advises none. `MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT` and `MIMALLOC_ALLOW_THP`
/// still win when set.
fn tune_allocator() {
    for (option, env) in [
        (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY"),
        (MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"),
        (MI_OPTION_ALLOW_THP, "MIMALLOC_ALLOW_THP"),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: called first in `main`, before any other thread exists (mimalloc's
            // options are not synchronised).
            unsafe { libmimalloc_sys::mi_option_set(option, 0) };
        }
    }
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
        // It only fails on kernels older than 3.15, which then keep their huge pages.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

/// Writes `text` to standard output. A closed or failing stdout (`| head`, a reader that died)
/// is reported on stderr and fails the command, instead of the panic `print!` would raise.
fn emit(text: &str) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| {
        eprintln!("cannot write to standard output: {e}");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Generate {
            format,
            rule_labels,
            scrape_interval,
            alert_interval,
            files,
        } => {
            let loaded = match load_all(&files) {
                Ok(l) => l,
                Err(code) => return code,
            };
            if !loaded.problems.is_empty() {
                for p in &loaded.problems {
                    eprintln!("{p}");
                }
                return ExitCode::FAILURE;
            }
            let settings = rules::Settings {
                scrape_interval,
                alert_interval,
                rule_labels: rule_labels.into_iter().collect(),
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = match format {
                Format::Prometheusrule => rules::write_prometheus_rules(&mut out, &loaded.valid, &settings),
                Format::Rulefile => rules::write_rule_file(&mut out, &loaded.valid, &settings),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Validate { files } => match load_all(&files) {
            Err(code) => code,
            Ok(loaded) if loaded.problems.is_empty() => emit(&format!(
                "{} ServiceLevelObjective(s), {} ErrorBudgetPolicy(ies) and {} ErrorBudgetOverride(s) valid\n",
                loaded.valid.len(),
                loaded.policies,
                loaded.overrides
            ))
            .map_or_else(|code| code, |()| ExitCode::SUCCESS),
            Ok(loaded) => {
                let lines: String = loaded.problems.iter().map(|p| format!("{p}\n")).collect();
                emit(&lines).map_or_else(|code| code, |()| ExitCode::FAILURE)
            }
        },
        Command::Import { tool, window, files } => run_import(tool, window, &files),
        Command::Crds { dir: None } => emit(&crds::stream()).map_or_else(|code| code, |()| ExitCode::SUCCESS),
        Command::Crds { dir: Some(dir) } => {
            for (name, yaml) in crds::documents() {
                if let Err(e) = std::fs::write(dir.join(&name), yaml) {
                    eprintln!("{}: {e}", dir.join(name).display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Override(args) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(break_glass::run(args)) {
                Ok(message) => emit(&format!("{message}\n")).map_or_else(|code| code, |()| ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check(args) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            let (report, code) = runtime.block_on(gate::cli::run(args));
            emit(&report).map_or_else(|code| code, |()| ExitCode::from(code))
        }
        Command::Run(args) => controller::main(*args),
        Command::Ui(args) => ui::main(args),
    }
}

#[cfg(test)]
mod allocator_tests {
    use super::*;

    #[test]
    fn the_tuned_options_are_the_ones_meant() {
        // Their defaults (1000 ms, 2, 1) tell the three options apart from every other.
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        let tuned = [MI_OPTION_PURGE_DELAY, MI_OPTION_ARENA_EAGER_COMMIT, MI_OPTION_ALLOW_THP];
        if [
            "MIMALLOC_PURGE_DELAY",
            "MIMALLOC_ARENA_EAGER_COMMIT",
            "MIMALLOC_ALLOW_THP",
        ]
        .iter()
        .all(|env| std::env::var_os(env).is_none())
        {
            assert_eq!(tuned.map(get), [1000, 2, 1]);
            tune_allocator();
            assert_eq!(tuned.map(get), [0, 0, 0]);
            #[cfg(target_os = "linux")]
            assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
        }
    }
}
