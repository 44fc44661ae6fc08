//! The apply-time checks of our kinds ([`super::problems_of`], `slo-warden validate`'s) parse
//! user PromQL, which takes seconds for a long enough expression. They run on blocking threads,
//! at most [`PARSERS`] at once, and a review waits at most [`CHECK_TIME`] for them; a check
//! still running then is refused, naming the field. A check that overruns keeps its thread
//! until it ends, so the CPU it can take stays within [`PARSERS`] threads.

use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::validate::Problem;

/// Time a review waits for its checks (queueing for a parser included): well within the
/// API server's webhook timeout (the chart's is 5 s).
pub const CHECK_TIME: Duration = Duration::from_secs(2);

/// Checks running at once.
const PARSERS: usize = 2;

static RUNNING: Semaphore = Semaphore::const_new(PARSERS);

/// What `slo-warden validate` says about `object`, or that it could not say in time.
pub async fn problems(kind: &str, object: &DynamicObject) -> Vec<Problem> {
    problems_within(kind, object, CHECK_TIME, |kind, object| {
        super::problems_of(kind, object)
    })
    .await
}

async fn problems_within<F>(kind: &str, object: &DynamicObject, limit: Duration, check: F) -> Vec<Problem>
where
    F: FnOnce(&str, &DynamicObject) -> Vec<Problem> + Send + 'static,
{
    let (owned_kind, owned) = (kind.to_string(), object.clone());
    let run = async {
        let permit = RUNNING.acquire().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check(&owned_kind, &owned)
        })
        .await
        .ok()
    };
    match tokio::time::timeout(limit, run).await {
        Ok(Some(problems)) => problems,
        Ok(None) => vec![Problem {
            field: "spec".into(),
            message: "could not be checked (the check failed); refused".into(),
        }],
        Err(_) => vec![too_slow(&object.data, limit)],
    }
}

/// A check that did not end within `limit`: the longest text of the spec is what the parser
/// chews on.
fn too_slow(data: &Value, limit: Duration) -> Problem {
    let mut longest = None;
    longest_text(&data["spec"], &mut "spec".to_string(), &mut longest);
    let (field, chars) = longest.unwrap_or_else(|| ("spec".to_string(), 0));
    Problem {
        field,
        message: format!(
            "could not be checked within {}s ({chars} characters); refused. Shorten the expression, \
             e.g. with a recording rule for its parts",
            limit.as_secs_f64()
        ),
    }
}

/// The path and length (in characters) of the longest string under `value`.
fn longest_text(value: &Value, path: &mut String, longest: &mut Option<(String, usize)>) {
    match value {
        Value::String(s) => {
            let chars = s.chars().count();
            if longest.as_ref().is_none_or(|(_, n)| chars > *n) {
                *longest = Some((path.clone(), chars));
            }
        }
        Value::Object(map) => {
            for (key, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                longest_text(v, path, longest);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                longest_text(v, path, longest);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slo(errors: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {
                         "errors": errors,
                         "total": "http_requests_total{service=\"checkout\"}"}}},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_check_that_overruns_is_refused_naming_the_field() {
        let long = format!("sum({})", vec!["a"; 5000].join(" + "));
        let started = std::time::Instant::now();
        let problems = problems_within(
            "ServiceLevelObjective",
            &slo(&long),
            Duration::from_millis(50),
            |_, _| {
                std::thread::sleep(Duration::from_millis(500));
                vec![]
            },
        )
        .await;
        assert!(started.elapsed() < Duration::from_millis(400), "answered at the limit");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "spec.indicator.ratio.errors");
        let want = format!("could not be checked within 0.05s ({} characters); refused", long.len());
        assert!(problems[0].message.starts_with(&want), "{}", problems[0]);
    }

    #[tokio::test]
    async fn checks_in_time_answer_as_validate_does() {
        let found = problems("ServiceLevelObjective", &slo("http_requests_total{code=~\"5..\"")).await;
        assert!(
            found
                .iter()
                .any(|p| p.field == "spec.indicator.ratio.errors" && p.message.contains("PromQL")),
            "{found:?}"
        );
        let ok = problems("ServiceLevelObjective", &slo("http_requests_total{code=~\"5..\"}")).await;
        assert_eq!(ok, vec![]);
    }

    #[test]
    fn the_longest_text_is_found_in_lists_too() {
        let mut longest = None;
        longest_text(
            &json!({"a": "xx", "b": [{"c": "xxxx"}, "x"]}),
            &mut "spec".into(),
            &mut longest,
        );
        assert_eq!(longest, Some(("spec.b[0].c".into(), 4)));
    }
}
