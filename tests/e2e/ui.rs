//! The web UI in a real browser (Debian's headless Chromium, driven over the DevTools protocol)
//! against the e2e cluster: `slo-warden ui` beside the test's operator, the pages read as a
//! person reads them. A failing step leaves a screenshot of the page in the test's log dir.

use std::sync::Arc;
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use kube::api::PostParams;
use serde_json::{Value, json};

use super::policy::{
    BURN, burn_policy, create_deployment, create_policy, overrides, register_release_webhook, wait_deployment,
    wait_evaluated,
};
use super::support::{self, Ctx, K8S, Operator, Options, free_port, test_user};
use super::{create, fast_spec, wait_ready};

/// The headless browser: `E2E_CHROMIUM`, else Debian's `chromium-headless-shell` or `chromium`.
fn chromium() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("E2E_CHROMIUM") {
        return p.into();
    }
    // The binary itself first: Debian's /usr/bin entries are shell wrappers, and a browser
    // started through one outlives the wrapper killed at the end of the test.
    for p in [
        "/usr/lib/chromium/chromium-headless-shell",
        "/usr/bin/chromium-headless-shell",
        "/usr/lib/chromium-headless-shell/chromium-headless-shell",
        "/usr/bin/chromium",
    ] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("no headless Chromium: run e2e/scripts/setup.sh (Debian's chromium-headless-shell) or set E2E_CHROMIUM");
}

/// axe-core's script (`E2E_AXE`, which e2e.sh sets from setup.sh's cache).
fn axe() -> String {
    let path = std::env::var("E2E_AXE").expect("E2E_AXE: axe.min.js (e2e/scripts/setup.sh caches it; e2e.sh sets it)");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Page {
    tab: Arc<Tab>,
    base: String,
    dir: std::path::PathBuf,
}

impl Page {
    fn open(&self, path: &str) {
        self.tab
            .navigate_to(&format!("{}{path}", self.base))
            .and_then(|t| t.wait_until_navigated())
            .unwrap_or_else(|e| self.failed(&format!("open {path}: {e}")));
    }

    /// The visible text of the page.
    fn text(&self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn eval(&self, js: &str) -> Value {
        self.tab
            .evaluate(js, true)
            .unwrap_or_else(|e| self.failed(&format!("evaluate {js}: {e}")))
            .value
            .unwrap_or(Value::Null)
    }

    /// A value the page computes, as JSON (objects and lists do not come back by value).
    fn json(&self, js: &str) -> Value {
        let text = self.eval(&format!("JSON.stringify({js})"));
        serde_json::from_str(text.as_str().unwrap_or("null")).unwrap_or(Value::Null)
    }

    /// Keeps a screenshot of the page, then fails.
    fn failed(&self, why: &str) -> ! {
        let shot = self
            .dir
            .join(format!("ui-{}.png", jiff::Timestamp::now().as_millisecond()));
        if let Ok(png) = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        {
            let _ = std::fs::write(&shot, png);
        }
        panic!("{why} (screenshot {})", shot.display());
    }

    fn check(&self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.failed(&why());
        }
    }

    /// Runs axe-core's checks of WCAG 2 A and AA on the page; fails on any violation.
    fn accessible(&self, axe: &str) {
        self.eval(axe);
        let found = self.eval(
            "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})
               .then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))",
        );
        let violations: Value = serde_json::from_str(found.as_str().unwrap_or("[]")).unwrap_or(Value::Null);
        self.check(violations == json!([]), || {
            format!("accessibility violations on {}: {violations}", self.tab.get_url())
        });
    }

    /// What has the focus after `n` presses of Tab on page `path`, freshly opened.
    fn tab_to(&self, path: &str, n: usize) -> String {
        self.open(path);
        let mut focused = String::new();
        for _ in 0..n {
            self.tab
                .press_key("Tab")
                .unwrap_or_else(|e| self.failed(&format!("Tab: {e}")));
            focused = self
                .eval("(e => e.tagName + ' ' + (e.getAttribute('name') || e.textContent.trim().slice(0, 40)))(document.activeElement)")
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        focused
    }
}

/// The list shows the test's SLO with the budget its status holds; a burn turns it red, the
/// policy page shows the stage and the Deployment it holds; an override shows who and why;
/// every page passes axe-core's WCAG A/AA checks and can be walked with the keyboard.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn the_ui_shows_budgets_freezes_and_overrides_in_a_browser() {
    let options = Options {
        prometheus: true,
        webhook: true,
        ..Options::default()
    };
    support::run_with("ui", options, async |ctx: &Ctx| {
        // First: the operator sets a configuration's caBundle at its next try, and the tries
        // back off while the configuration does not exist yet.
        register_release_webhook(ctx, "Fail").await;
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        create_policy(ctx, "checkout", burn_policy("checkout", &["freezeDeployments"], "10m")).await;
        wait_evaluated(ctx, "checkout").await;

        let addr = format!("127.0.0.1:{}", free_port());
        let ui = Operator::spawn(
            &[
                "ui".into(),
                "--cluster".into(),
                "e2e".into(),
                "--http-addr".into(),
                addr.clone(),
                "--prometheus-url".into(),
                ctx.env.prometheus_url.clone(),
            ],
            &[],
            &ctx.dir.join("ui.log"),
        );
        ctx.eventually("the UI to list every cluster", K8S, async || {
            support::http_ok("GET", &ui.url("/readyz")).map(drop)
        })
        .await;
        let browser = Browser::new(
            LaunchOptions::default_builder()
                .path(Some(chromium()))
                .sandbox(false)
                .window_size(Some((1280, 900)))
                .idle_browser_timeout(Duration::from_secs(600))
                .build()
                .expect("launch options"),
        )
        .expect("start headless Chromium");
        let page = Page {
            tab: browser.new_tab().expect("a tab"),
            base: format!("http://{addr}"),
            dir: ctx.dir.clone(),
        };
        let axe = axe();
        let list = format!("/?namespace={}", ctx.ns);

        // The budget the list shows is the one the SLO's status holds (what Prometheus gave):
        // the `window` group first records it within 5 minutes of the rules, and a value counts
        // once written twice on schedule.
        let shown = ctx
            .eventually(
                "the list to show checkout's budget",
                Duration::from_secs(660),
                async || {
                    let slo = ctx.slos().get("checkout").await.map_err(|e| e.to_string())?;
                    let remaining = slo
                        .status
                        .and_then(|s| s.budget)
                        .and_then(|b| b.remaining)
                        .ok_or("no budget read yet")?;
                    page.open(&list);
                    let text = page.text();
                    let want = slo_warden::ui::format::percent(Some(remaining));
                    if text.contains("checkout") && text.contains(&want) {
                        Ok(want)
                    } else {
                        Err(format!("{want} not in: {text}"))
                    }
                },
            )
            .await;
        ctx.log(format!("the list shows checkout with {shown} of its budget left"));
        page.accessible(&axe);
        // From the top: the skip link, the two pages, then the search box.
        let focused = page.tab_to(&list, 4);
        page.check(focused == "INPUT q", || {
            format!("4 Tabs reached {focused:?}, not the search box")
        });

        // A burn: the SLO turns red, the policy holds web, and its page says so.
        ctx.traffic("errors=0.5").unwrap();
        wait_deployment(ctx, "web", true, &["checkout"], BURN).await;
        ctx.eventually("the list to show checkout burning, in red", K8S, async || {
            page.open(&list);
            let badges = page.json("Array.from(document.querySelectorAll('table.slos .badge')).map(e => [e.textContent, getComputedStyle(e).backgroundColor])");
            // Red, and said in words too (a 50% error ratio spends a 1% budget within minutes).
            let red = "rgb(255, 235, 233)";
            match badges.as_array().map(Vec::as_slice) {
                Some([b]) if (b[0] == "Burning" || b[0] == "Exhausted") && b[1] == red => Ok(()),
                _ => Err(format!("badges {badges}, want one Burning or Exhausted on {red}")),
            }
        })
        .await;
        page.open(&format!("/slos/e2e/{}/checkout", ctx.ns));
        let text = page.text();
        page.check(
            text.contains("above: firing once held") && text.contains("fast-burn"),
            || format!("the SLO page: {text}"),
        );
        page.accessible(&axe);
        // Its charts are images drawn from Prometheus (200 px high), not a complaint (60).
        let charts = page.json("Array.from(document.querySelectorAll('figure img')).map(i => i.naturalHeight)");
        page.check(charts == json!([200, 200, 200]), || {
            format!("charts not drawn: {charts}")
        });
        page.open(&format!("/policies/e2e/{}/checkout", ctx.ns));
        let text = page.text();
        page.check(
            text.contains("in force: fast-burn")
                && text.contains("Deployment")
                && text.contains("web")
                && text.contains("freezeDeployments"),
            || format!("the policy page: {text}"),
        );
        page.accessible(&axe);

        // Break-glass: who and why, as the webhook stamped it.
        let mut o = super::policy::override_of("hotfix", "30m", "INC-4711: the fix must ship", None);
        o.metadata.namespace = Some(ctx.ns.clone());
        overrides(ctx)
            .create(&PostParams::default(), &o)
            .await
            .expect("create the override");
        ctx.eventually("the policy page to show the override", K8S, async || {
            page.open(&format!("/policies/e2e/{}/checkout", ctx.ns));
            let text = page.text();
            if text.contains(&test_user()) && text.contains("INC-4711: the fix must ship") && text.contains("Active") {
                Ok(())
            } else {
                Err(format!("no active override by {}: {text}", test_user()))
            }
        })
        .await;
        page.open("/policies?inForce=true");
        page.accessible(&axe);
        drop(ui);
    });
}
