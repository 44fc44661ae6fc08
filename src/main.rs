use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use slo_warden::documents::{self, Loaded};
use slo_warden::duration::Duration;
use slo_warden::{break_glass, controller, crds, rules};

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
        #[arg(long = "rule-label", value_parser = controller::parse_label)]
        rule_labels: Vec<(String, String)>,
        /// Scrape interval of the SLI's source series (keeps the window ratio exact).
        #[arg(long, default_value = "30s", value_parser = Duration::parse)]
        scrape_interval: Duration,
        /// Files with ServiceLevelObjective documents; `-` reads stdin.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Check ServiceLevelObjective and ErrorBudgetPolicy files; prints one line per problem and
    /// exits non-zero if any.
    Validate {
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
    /// Run the controller.
    Run(Box<controller::Args>),
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
            "no ServiceLevelObjective or ErrorBudgetPolicy documents in {}",
            files.join(", ")
        );
        return Err(ExitCode::from(2));
    }
    Ok(out)
}

/// mimalloc hands memory back to the system between polls; with glibc's allocator the peak of
/// parsing one poll of 10,000 SLOs stayed in the process for good.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate {
            format,
            rule_labels,
            scrape_interval,
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
            Ok(loaded) if loaded.problems.is_empty() => {
                println!(
                    "{} ServiceLevelObjective(s) and {} ErrorBudgetPolicy(ies) valid",
                    loaded.valid.len(),
                    loaded.policies
                );
                ExitCode::SUCCESS
            }
            Ok(loaded) => {
                for p in &loaded.problems {
                    println!("{p}");
                }
                ExitCode::FAILURE
            }
        },
        Command::Crds { dir: None } => {
            print!("{}", crds::stream());
            ExitCode::SUCCESS
        }
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
                Ok(message) => {
                    println!("{message}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => controller::main(*args),
    }
}
