//! The command line as a shell runs it: output to a reader that has gone away.

use std::process::{Command, Stdio};

/// `slo-warden <args>` writing to a pipe whose reader is already closed (`| head` after it
/// exits): the command fails with a message instead of panicking.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    for args in [
        &[
            "override",
            "checkout",
            "--for",
            "2h",
            "--reason",
            "hotfix for INC-123",
            "--print",
        ][..],
        &["crds"][..],
    ] {
        let (code, stderr) = with_closed_stdout(args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write to standard output"), "{args:?}: {stderr}");
    }
}

/// SIGTERM while the watch caches cannot sync (an API server that never answers): the
/// operator still exits, cleanly, within its stop grace.
#[test]
fn sigterm_before_the_caches_sync_exits() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("slo-warden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    // Port 1 on loopback: every connection is refused, so no list ever succeeds.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
        .args(["run", "--http-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("PROMETHEUS_URL")
        .env_remove("WEBHOOK_ADDR")
        .env_remove("LEADER_ELECT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("slo-warden controller started"));
    assert!(started, "the operator did not start");
    // Give the watches time to fail a first time.
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let exited = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if sent.elapsed() > Duration::from_secs(25) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = drain.join().unwrap().join("\n");
    let _ = std::fs::remove_dir_all(&dir);
    let status = exited.unwrap_or_else(|| panic!("still running 25s after SIGTERM:\n{log}"));
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("shut down cleanly"), "{log}");
}

/// `slo-warden check` against a cluster that refuses every connection: the answer is unknown
/// (exit 2), never a go, unless the caller says what an unknown answer means.
#[test]
fn a_release_gate_that_cannot_reach_the_cluster_is_unknown() {
    let dir = std::env::temp_dir().join(format!("slo-warden-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
            .args(["check", "--namespace", "shop", "--timeout", "10s"])
            .args(extra)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = check(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.starts_with("UNKNOWN: slo-warden cannot tell whether releases in namespace shop may go"),
        "{out}"
    );
    assert!(out.contains("cannot list the ErrorBudgetPolicies of shop"), "{out}");
    let (code, out) = check(&["--on-unknown", "allow"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("--on-unknown allow: exit 0"), "{out}");
    let (code, out) = check(&["--on-unknown", "deny", "--output", "json"]);
    assert_eq!(code, Some(1), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["answer"], "unknown");
    assert_eq!(report["exitCode"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `slo-warden ui` refuses flags that cannot mean what they say, before connecting to anything:
/// it exits 1 and names the flag.
#[test]
fn the_ui_refuses_flags_that_contradict_each_other() {
    let ui = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
            .arg("ui")
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .env_remove("PROMETHEUS_URL")
            .output()
            .unwrap();
        // Flag syntax is clap's (stderr), the rest is logged (stdout).
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    for (args, says) in [
        (
            &["--cluster", "prod", "--cluster", "prod=other"][..],
            "--cluster prod is given twice",
        ),
        (
            &["--cluster", "prod", "--cluster-prometheus-url", "staging=http://p:9090"],
            "--cluster-prometheus-url staging=...: no --cluster is named staging",
        ),
        (
            &["--prometheus-cluster-label", "not a label"],
            "--prometheus-cluster-label \"not a label\": not a Prometheus label name",
        ),
        (
            &["--grafana-url", "grafana:3000"],
            "--grafana-url \"grafana:3000\": an http:// or https:// URL",
        ),
        (&["--cluster", "a b"], "is not a cluster name"),
    ] {
        let (code, stderr) = ui(args);
        assert_ne!(code, Some(0), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?} should say {says:?}: {stderr}");
    }
}
