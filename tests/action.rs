//! The release-gate GitHub Action (`action.yml`) and the workflows: linted by actionlint (with
//! shellcheck on their scripts) and shellcheck on the action's own script, and the action's
//! script run as a runner runs it, with `docker run IMAGE ARGS` standing for slo-warden ARGS.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool built by `e2e/scripts/build-tools.sh` (`$SLO_WARDEN_CACHE/<name>-<version>/bin`), at
/// the version `e2e/scripts/versions.sh` pins.
fn cached_tool(name: &str, version_var: &str) -> PathBuf {
    let versions = std::fs::read_to_string(root().join("e2e/scripts/versions.sh")).unwrap();
    let version = versions
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{version_var}=")))
        .unwrap_or_else(|| panic!("no {version_var} in versions.sh"))
        .trim()
        .to_string();
    let cache = std::env::var_os("SLO_WARDEN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"))
                .join("slo-warden")
        });
    let path = cache.join(format!("{name}-{version}/bin/{name}"));
    assert!(
        path.exists(),
        "{} is missing: run `make tools` (e2e/scripts/build-tools.sh {name})",
        path.display()
    );
    path
}

/// The action's one step: its script.
fn action_script() -> String {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    action["runs"]["steps"][0]["run"].as_str().unwrap().to_string()
}

#[test]
fn actionlint_and_shellcheck_pass() {
    let actionlint = cached_tool("actionlint", "ACTIONLINT_VERSION");
    assert!(
        Command::new("shellcheck")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "shellcheck is missing: run `make tools` (Debian's shellcheck)"
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root().join("examples/gates/github-workflow.yml"));
    let out = Command::new(&actionlint)
        .current_dir(root())
        .args(["-shellcheck", "shellcheck"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // actionlint checks the inputs a workflow gives the action (`uses: ./`), not the action's
    // own script: shellcheck reads that.
    let dir = temp_dir("shellcheck");
    let script = dir.join("action.sh");
    std::fs::write(&script, format!("#!/usr/bin/env bash\n{}", action_script())).unwrap();
    let out = Command::new("shellcheck")
        .args(["-s", "bash"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck action.yml's script:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slo-warden-action-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a run of the action's script left: its exit code, its log, its `answer` output and
/// the job summary it wrote.
struct Run {
    code: Option<i32>,
    log: String,
    answer: String,
    summary: String,
}

/// Runs the action's script with `inputs` as the step's environment; `docker` is a stand-in
/// that runs this build's slo-warden with the mounted kubeconfig.
fn run_action(dir: &Path, inputs: &[(&str, &str)]) -> Run {
    let shim = dir.join("bin");
    std::fs::create_dir_all(&shim).unwrap();
    let docker = shim.join("docker");
    std::fs::write(
        &docker,
        format!(
            r#"#!/usr/bin/env bash
# docker run [options] IMAGE ARGS, as the action calls it: slo-warden ARGS, KUBECONFIG the mount.
set -euo pipefail
[[ $1 == run ]] || exit 125
shift
kubeconfig=
while [[ $1 == -* ]]; do
  case $1 in
    -v) kubeconfig=${{2%%:*}}; shift 2 ;;
    -e|--network|--user) shift 2 ;;
    *) shift ;;
  esac
done
shift  # the image
KUBECONFIG=$kubeconfig exec {} "$@"
"#,
            env!("CARGO_BIN_EXE_slo-warden")
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&docker).status().unwrap();
    let (output, summary) = (dir.join("output"), dir.join("summary"));
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(&summary);
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(action_script())
        .env("PATH", path)
        .env("RUNNER_TEMP", dir)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (k, v) in [
        ("POLICY", ""),
        ("SLO", ""),
        ("ON_UNKNOWN", "fail"),
        ("IMAGE", "ghcr.io/slo-warden/slo-warden:0.1.0"),
    ] {
        command.env(k, v);
    }
    for (k, v) in inputs {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Run {
        code: out.status.code(),
        log: String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        answer: read(&output)
            .lines()
            .find_map(|l| l.strip_prefix("answer=").map(String::from))
            .unwrap_or_default(),
        summary: read(&summary),
    }
}

/// A cluster that refuses every connection: the gate cannot tell, the job fails (exit 2) and
/// says so in its summary; `on-unknown: allow` lets it pass, saying the same.
#[test]
fn the_action_fails_the_job_when_slo_warden_cannot_tell() {
    let dir = temp_dir("unknown");
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n";
    let inputs = [("KUBECONFIG_CONTENT", kubeconfig), ("NAMESPACE", "shop")];
    let run = run_action(&dir, &inputs);
    assert_eq!(run.code, Some(2), "{}", run.log);
    assert_eq!(run.answer, "unknown", "{}", run.log);
    assert!(
        run.summary
            .contains("slo-warden cannot tell whether releases to `shop` may go"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("cannot list the ErrorBudgetPolicies of shop"),
        "{}",
        run.summary
    );
    let allowed = run_action(&dir, &[inputs[0], inputs[1], ("ON_UNKNOWN", "allow")]);
    assert_eq!(allowed.code, Some(0), "{}", allowed.log);
    assert_eq!(allowed.answer, "unknown");
    // The kubeconfig does not outlive the step.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("slo-warden."))
        .collect();
    assert!(left.is_empty(), "the step left {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
