//! The controller: watches ServiceLevelObjectives and keeps their PrometheusRules in sync.

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> std::process::ExitCode {
    eprintln!("the controller is not built yet");
    std::process::ExitCode::FAILURE
}
