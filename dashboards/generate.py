#!/usr/bin/env python3
"""Writes slo-warden's Grafana dashboards (Grafana 10 and later) next to this script:

    slo-overview.json   every SLO: objective, budget left, burn rates, long-run burn, state, frozen
    slo-detail.json     one SLO: SLI, budget burn-down over the window, burn per tier, alerts
    slo-policies.json   ErrorBudgetPolicies: stages, what they hold, overrides, unenforced budgets

    dashboards/generate.py            # rewrite the files
    dashboards/generate.py --check    # exit 1 when a file differs from what would be written

Edit this script, not the JSON; `make generate` runs it and copies the files into the chart
(charts/slo-warden/dashboards/). tests/dashboards.rs checks the files against this script,
Grafana's schema (tools/grafana-validate) and the PromQL parser; tests/e2e/dashboards.rs runs
every query against the e2e Prometheus and wants data from each.

Every query answers for every existing SLO or policy, with zeros rather than nothing: counts end
in `or vector(0)`, per-SLO values fall back to `slo:info * 0`. An empty panel then means the
series are missing (not scraped, rules not loaded), never "nothing to report"; the one panel
with nothing to show before the first budget is recorded says so.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["slo", "slo-warden"]
OVERVIEW, DETAIL, POLICIES = "slo-warden-overview", "slo-warden-detail", "slo-warden-policies"

# The `window` group records every 5 minutes, right at Prometheus' 5-minute lookback: read its
# series over two evaluations. The `calibration` group records hourly.
TILED = "10m"
HOURLY = "2h"

# The operator's gauges of a replica that lost the Lease stay as they were: read the leader's.
LEADER = "and on (job, instance) (slo_warden_leader == 1)"

# Default burn-rate tiers (src/burn_rate.rs): the share of the budget each spends before it
# fires; factor = share x window / long, at least 1, so the threshold follows the SLO window.
TIERS = [
    ("page", "1h", "5m", 0.02, 3600),
    ("page", "6h", "30m", 0.05, 6 * 3600),
    ("ticket", "1d", "2h", 0.10, 86400),
    ("ticket", "3d", "6h", 0.10, 3 * 86400),
]
TILED_WINDOWS = {"1d", "3d"}

# Budget state as a number, in the operator's order (src/budget/mod.rs): Exhausted when the
# budget is spent, Burning while a burn alert fires, Healthy, NoData when the budget is NaN or
# absent.
STATES = [(0, "NoData", "text"), (1, "Healthy", "green"), (2, "Burning", "orange"), (3, "Exhausted", "red")]


def factor_30d(share, long_seconds):
    """A tier's default factor for a 30-day window, the most common one."""
    return max(round(share * 30 * 86400 / long_seconds, 4), 1)


def burn_steps(factor):
    """Green, orange above 1 (faster than the budget allows), red from the tier's factor."""
    return ((None, "green"), (1, "orange"), (factor, "red")) if factor > 1 else ((None, "green"), (1, "red"))


# ---- PromQL ----------------------------------------------------------------------------------


def sel(multi):
    """The SLO variables as label matchers: regular expressions when they take several values."""
    op = "=~" if multi else "="
    return f'namespace{op}"$namespace", slo{op}"$slo"'


def latest(metric, s, over=TILED):
    return f"last_over_time({metric}{{{s}}}[{over}])"


def per_slo(expr):
    return f"max by (namespace, slo) ({expr})"


def info(s):
    return per_slo(latest("slo:info", s))


def remaining(s):
    return per_slo(latest("slo:error_budget_remaining:ratio", s))


def ratio(window, s):
    if window in TILED_WINDOWS:
        return per_slo(latest(f"slo:sli_error:ratio_rate{window}", s))
    return per_slo(f"slo:sli_error:ratio_rate{window}{{{s}}}")


def burn(window, s):
    """Burn rate over a window: error ratio / budget."""
    return f"{ratio(window, s)}\n/ on (namespace, slo)\n{per_slo(latest('slo:error_budget:ratio', s))}"


def zero_filled(expr, s):
    """`expr`, and 0 for every SLO it has nothing for."""
    return f"{expr}\nor on (namespace, slo)\n{info(s)} * 0"


def or_none(expr, label):
    """`expr`, or one 0 series with `label="none"` when it has nothing (a quiet counter)."""
    return f'{expr}\nor on () label_replace(vector(0), "{label}", "none", "", "")'


def state(s):
    left = remaining(s)
    return (
        f"({left} <= 0) * 0 + 3\n"
        f"or on (namespace, slo)\n"
        f'(count by (namespace, slo) (ALERTS{{{s}, alertstate="firing", long!=""}}) and on (namespace, slo) ({left} > -Inf)) * 0 + 2\n'
        f"or on (namespace, slo)\n"
        f"({left} > -Inf) * 0 + 1\n"
        f"or on (namespace, slo)\n"
        f"{info(s)} * 0"
    )


def signal_health(s):
    """1 while SLOSignalUnhealthy fires for an SLO (its request series sampled too seldom for its
    tiles: the short windows and burn alerts are blind), else 2 while Prometheus holds less than
    99% of its window (the operator counts the budget as missing then, unless partialWindows),
    else 0."""
    firing = f'count by (namespace, slo) (ALERTS{{{s}, alertname="SLOSignalUnhealthy", alertstate="firing"}})'
    return zero_filled(f"{firing} * 0 + 1\nor on (namespace, slo)\n({covered(s)} < 0.99) * 0 + 2", s)


def covered(s):
    """The share of each SLO's window Prometheus holds data for."""
    return f'{per_slo(latest("slo:window_covered:seconds", s))}\n/ on (namespace, slo)\n{per_slo(latest("slo:window:seconds", s))}'


def held_in_namespace(s):
    """Objects the policies of each SLO's namespace hold, on every SLO of it."""
    held = f'sum by (namespace) (slo_warden_policy_held_objects{{namespace=~"$namespace"}} {LEADER})'
    return zero_filled(f"{info(s)} * 0\n+ on (namespace) group_left ()\n{held}", s)


def operator(metric, matchers):
    """A gauge of the operator, as the leader has it."""
    return f"{metric}{{{matchers}}} {LEADER}"


# ---- Panels ----------------------------------------------------------------------------------


def target(ref, expr, legend=None, instant=False, table=False):
    t = {"refId": ref, "datasource": DS, "expr": expr}
    if legend is not None:
        t["legendFormat"] = legend
    t["instant"] = instant or table
    t["range"] = not (instant or table)
    if table:
        t["format"] = "table"
    return t


def data_link(title, url):
    # Grafana reads title, url and targetBlank; its schema types field links as dashboard links,
    # whose other fields are required, so they carry their defaults.
    return {
        "title": title,
        "type": "link",
        "icon": "external link",
        "tooltip": "",
        "url": url,
        "tags": [],
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": False,
    }


def detail_link(ns, slo):
    return data_link(
        "SLO detail",
        f"/d/{DETAIL}?${{datasource:queryparam}}&var-namespace={ns}&var-slo={slo}&${{__url_time_range}}",
    )


def thresholds(*steps):
    """`steps`: (value or None for the base, color)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def value_mappings(entries):
    return [
        {
            "type": "value",
            "options": {str(v): {"text": text, "color": color, "index": i} for i, (v, text, color) in enumerate(entries)},
        }
    ]


def override(name, *properties, by="byName"):
    return {"matcher": {"id": by, "options": name}, "properties": [{"id": k, "value": v} for k, v in properties]}


LEGEND = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}
NO_LEGEND = dict(LEGEND, showLegend=False)
TOOLTIP = {"mode": "multi", "sort": "desc"}


def panel(kind, title, description, targets, options, defaults, overrides=(), **extra):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": options,
    }
    p.update(extra)
    return p


def stat(title, description, expr, unit="none", steps=((None, "green"),), mappings=(), legend=None,
         text_mode="value", decimals=None, no_value=None):
    defaults = {"unit": unit, "thresholds": thresholds(*steps), "color": {"mode": "thresholds"}}
    if no_value is not None:
        defaults["noValue"] = no_value
    if decimals is not None:
        defaults["decimals"] = decimals
    if mappings:
        defaults["mappings"] = value_mappings(mappings)
    return panel(
        "stat",
        title,
        description,
        [target("A", expr, legend=legend, instant=True)],
        {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
        },
        defaults,
    )


def timeseries(title, description, targets, unit="none", steps=((None, "green"),), threshold_style="off",
               overrides=(), links=(), stack=False, minimum=None, **extra):
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "thresholdsStyle": {"mode": threshold_style},
    }
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
        custom["fillOpacity"] = 60
    defaults = {"unit": unit, "thresholds": thresholds(*steps), "color": {"mode": "palette-classic"}, "custom": custom}
    if minimum is not None:
        defaults["min"] = minimum
    if links:
        defaults["links"] = list(links)
    return panel("timeseries", title, description, targets, {"legend": LEGEND, "tooltip": TOOLTIP}, defaults, overrides, **extra)


def state_timeline(title, description, targets, mappings, overrides=(), links=()):
    defaults = {
        "unit": "none",
        "thresholds": thresholds((None, "text")),
        "color": {"mode": "thresholds"},
        "mappings": value_mappings(mappings),
        "custom": {"lineWidth": 0, "fillOpacity": 80},
    }
    if links:
        defaults["links"] = list(links)
    return panel(
        "state-timeline",
        title,
        description,
        targets,
        {
            "showValue": "never",
            "rowHeight": 0.9,
            "mergeValues": True,
            "alignValue": "left",
            "legend": NO_LEGEND,
            "tooltip": {"mode": "single", "sort": "none"},
        },
        defaults,
        overrides,
    )


def bargauge(title, description, expr, legend, unit, steps, minimum=None, maximum=None, links=()):
    defaults = {"unit": unit, "thresholds": thresholds(*steps), "color": {"mode": "thresholds"}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if links:
        defaults["links"] = list(links)
    return panel(
        "bargauge",
        title,
        description,
        [target("A", expr, legend=legend, instant=True)],
        {
            "displayMode": "gradient",
            "valueMode": "color",
            "namePlacement": "auto",
            "showUnfilled": True,
            "sizing": "auto",
            "minVizWidth": 8,
            "minVizHeight": 16,
            "maxVizHeight": 300,
            "legend": NO_LEGEND,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
        },
        defaults,
    )


def table(title, description, targets, columns, overrides=(), sort_by=None):
    """Instant queries in table format merged on their labels; `columns` renames each query's
    value column (refId -> name, None hides it)."""
    rename = {f"Value #{ref}": name for ref, name in columns.items() if name}
    hide = {"Time": True}
    hide.update({f"Value #{ref}": True for ref, name in columns.items() if not name})
    options = {"showHeader": True, "cellHeight": "sm", "frameIndex": 0}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": False}]
    return panel(
        "table",
        title,
        description,
        targets,
        options,
        {
            "thresholds": thresholds((None, "green")),
            "color": {"mode": "thresholds"},
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False, "filterable": True},
        },
        overrides,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": hide, "renameByName": rename}},
        ],
    )


def layout(rows):
    """`rows`: (height, [(width, panel), ...]) top to bottom; returns the panels with ids and
    grid positions."""
    out, y, pid = [], 0, 1
    for height, row in rows:
        x = 0
        for width, p in row:
            p = dict(p, id=pid, gridPos={"h": height, "w": width, "x": x, "y": y})
            out.append(p)
            x += width
            pid += 1
        assert x <= 24, f"row at y={y} is {x} wide"
        y += height
    return out


# ---- Dashboards --------------------------------------------------------------------------------


def datasource_variable():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "default", "value": "default"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name, label, query, multi, hide=0):
    v = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": query,
        "refresh": 2,
        "sort": 1,
        "hide": hide,
        "regex": "",
        "options": [],
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        # `.*` rather than every value listed: short queries, and SLOs of plain rule files
        # (no namespace label) are included.
        v["allValue"] = ".*"
        v["current"] = {"text": "All", "value": "$__all"}
    else:
        v["current"] = {"text": "", "value": ""}
    return v


def dashboard(uid, title, description, variables, panels, time_from, annotations=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "title": "slo-warden",
                "type": "dashboards",
                "icon": "external link",
                "tooltip": "",
                "tags": ["slo-warden"],
                "asDropdown": True,
                "targetBlank": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *annotations,
            ]
        },
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout(panels),
    }


STATE_MAPPINGS = [(v, text, color) for v, text, color in STATES]
BUDGET_STEPS = ((None, "red"), (0, "orange"), (0.25, "green"))
# Calibration (README "Reviewing objectives"): below 0.3 too loose, above 1.5 too tight.
LONG_RUN_STEPS = ((None, "blue"), (0.3, "green"), (1.5, "red"))


def overview():
    s = sel(True)
    ns = 'namespace=~"$namespace"'
    rows = [
        (
            4,
            [
                (4, stat("SLOs", "ServiceLevelObjectives with recorded series in the selected namespaces.",
                         f"count({info(s)}) or vector(0)")),
                (4, stat("Budget spent", "SLOs whose error budget over their window is spent (remaining <= 0).",
                         f"count({remaining(s)} <= 0) or vector(0)", steps=((None, "green"), (1, "red")))),
                (4, stat("Burning", "SLOs with a burn-rate alert firing.",
                         f'count(count by (namespace, slo) (ALERTS{{{s}, alertstate="firing", long!=""}})) or vector(0)',
                         steps=((None, "green"), (1, "orange")))),
                (4, stat("Lowest budget left", "The smallest fraction of error budget left among the selected SLOs.",
                         f"min({remaining(s)})", unit="percentunit", steps=BUDGET_STEPS, no_value="no budget recorded yet")),
                (4, stat("Objects held", "Deployments, Rollouts and Namespaces the ErrorBudgetPolicies of the selected namespaces hold paused or frozen.",
                         f"sum({operator('slo_warden_policy_held_objects', ns)}) or vector(0)",
                         steps=((None, "green"), (1, "orange")))),
                (4, stat("Spent, not enforced", "SLOs whose budget is spent while no policy holds anything for them: no policy, a dry run or an override.",
                         f'sum({operator("slo_warden_budget_exhausted_unenforced", s)}) or vector(0)',
                         steps=((None, "green"), (1, "red")))),
            ],
        ),
        (
            11,
            [
                (24, table(
                    "Every SLO",
                    "Every SLO now. Burn rate = error ratio over the window / error budget (1 spends the budget exactly over the SLO window). "
                    "Long run: the burn over 90 days (calibration; below 0.3 the objective is too loose, above 1.5 too tight). "
                    "Frozen: objects the policies of the SLO's namespace hold. Sampled every: how often its request series are "
                    "scraped, as measured. Signal: blind while SLOSignalUnhealthy fires (sampled too seldom for its tiles: "
                    "its short windows and burn alerts cannot see a burn; set spec.scrapeInterval); short history while "
                    "Prometheus holds less than 99% of the window (the budget counts as missing). Covered: the share of the "
                    "window Prometheus holds. Requests 1h: what the burn alerts' minRequests is held against. Click an SLO for its detail.",
                    [
                        target("A", f"max by (namespace, slo, service, objective, window) ({latest('slo:info', s)})", table=True),
                        target("B", remaining(s), table=True),
                        *[target(ref, burn(w, s), table=True) for ref, w in zip("CDEF", ["1h", "6h", "1d", "3d"])],
                        target("G", per_slo(latest("slo:long_run_burn:ratio", s, HOURLY)), table=True),
                        target("H", state(s), table=True),
                        target("I", held_in_namespace(s), table=True),
                        target("J", zero_filled(per_slo(operator("slo_warden_budget_exhausted_unenforced", s)), s), table=True),
                        target("K", per_slo(latest("slo:sli_scrape_interval:seconds", s)), table=True),
                        target("L", signal_health(s), table=True),
                        target("M", covered(s), table=True),
                        target("N", per_slo(latest("slo:sli_requests:count1h", s, "3m")), table=True),
                    ],
                    {"A": None, "B": "Budget left", "C": "Burn 1h", "D": "Burn 6h", "E": "Burn 1d", "F": "Burn 3d",
                     "G": "Long-run burn", "H": "State", "I": "Frozen", "J": "Spent, not enforced",
                     "K": "Sampled every", "L": "Signal", "M": "Covered", "N": "Requests 1h"},
                    overrides=[
                        override("slo", ("links", [detail_link("${__data.fields.namespace}", "${__data.fields.slo}")])),
                        override("Budget left", ("unit", "percentunit"), ("decimals", 1),
                                 ("thresholds", thresholds(*BUDGET_STEPS)), ("custom.cellOptions", {"type": "color-text"})),
                        *[
                            override(f"Burn {long}", ("decimals", 2), ("thresholds", thresholds(*burn_steps(factor_30d(share, seconds)))),
                                     ("custom.cellOptions", {"type": "color-text"}))
                            for _, long, _, share, seconds in TIERS
                        ],
                        override("Long-run burn", ("decimals", 2), ("thresholds", thresholds(*LONG_RUN_STEPS)),
                                 ("custom.cellOptions", {"type": "color-text"})),
                        override("State", ("mappings", value_mappings(STATE_MAPPINGS)), ("custom.cellOptions", {"type": "color-background"})),
                        override("Frozen", ("mappings", value_mappings([(0, "no", "green")])),
                                 ("thresholds", thresholds((None, "green"), (1, "red"))), ("custom.cellOptions", {"type": "color-background"})),
                        override("Spent, not enforced", ("mappings", value_mappings([(0, "no", "green"), (1, "yes", "red")])),
                                 ("custom.cellOptions", {"type": "color-background"})),
                        override("Sampled every", ("unit", "s"), ("decimals", 0)),
                        override("Covered", ("unit", "percentunit"), ("decimals", 0)),
                        override("Requests 1h", ("decimals", 0)),
                        override("Signal", ("mappings", value_mappings([(0, "seen", "green"), (1, "blind", "red"), (2, "short history", "orange")])),
                                 ("custom.cellOptions", {"type": "color-background"})),
                    ],
                    sort_by="Budget left",
                )),
            ],
        ),
        (
            8,
            [
                (12, timeseries(
                    "Error budget left",
                    "Fraction of each SLO's error budget left over its window (1 = untouched, 0 = spent).",
                    [target("A", remaining(s), legend="{{namespace}}/{{slo}}")],
                    unit="percentunit", steps=BUDGET_STEPS, threshold_style="dashed",
                    links=[detail_link("${__field.labels.namespace}", "${__field.labels.slo}")],
                )),
                (12, timeseries(
                    "Burn rate over 1h",
                    "Error ratio over the last hour / error budget. Dashed: 14.4, where a 30-day SLO pages (2% of the budget in an hour).",
                    [target("A", burn("1h", s), legend="{{namespace}}/{{slo}}")],
                    steps=((None, "green"), (14.4, "red")), threshold_style="dashed", minimum=0,
                    links=[detail_link("${__field.labels.namespace}", "${__field.labels.slo}")],
                )),
            ],
        ),
        (
            8,
            [
                (12, bargauge(
                    "Budget left, lowest first",
                    "The 20 SLOs with the least error budget left.",
                    f"sort(bottomk(20, {remaining(s)}))", "{{namespace}}/{{slo}}", "percentunit", BUDGET_STEPS,
                    minimum=0, maximum=1, links=[detail_link("${__field.labels.namespace}", "${__field.labels.slo}")],
                )),
                (12, bargauge(
                    "Long-run burn rate (90 days)",
                    "Burn rate over the last 90 days (or the window, if longer), hourly. Blue: below 0.3, the objective is beaten by far (too loose); "
                    "red: above 1.5, the budget is blown quarter after quarter (too tight). See README, \"Reviewing objectives\".",
                    f"sort_desc({per_slo(latest('slo:long_run_burn:ratio', s, HOURLY))})", "{{namespace}}/{{slo}}", "none", LONG_RUN_STEPS,
                    minimum=0, links=[detail_link("${__field.labels.namespace}", "${__field.labels.slo}")],
                )),
            ],
        ),
    ]
    return dashboard(
        OVERVIEW,
        "slo-warden / SLOs",
        "Every ServiceLevelObjective: objective, error budget left, burn rates, long-run burn, state, and whether its namespace is frozen.",
        [
            query_variable("namespace", "Namespace", "label_values(slo:info, namespace)", True),
            query_variable("slo", "SLO", 'label_values(slo:info{namespace=~"$namespace"}, slo)', True),
        ],
        rows,
        "now-24h",
    )


def detail():
    s = sel(False)
    one = lambda expr: f"max({expr})"  # noqa: E731 - one SLO: drop the labels
    budget = one(latest("slo:error_budget:ratio", s))
    window_seconds = one(latest("slo:window:seconds", s))

    def tier(severity, long, short, share, long_seconds):
        r = lambda w: one(latest(f"slo:sli_error:ratio_rate{w}", s)) if w in TILED_WINDOWS else one(f"slo:sli_error:ratio_rate{w}{{{s}}}")  # noqa: E731
        default = f"clamp_min({share} * {window_seconds} / {long_seconds}, 1)"
        return timeseries(
            f"Burn rate {long} and {short} ({severity})",
            f"Burn rate over {long} and over {short}. The default {severity} tier fires when both stay above the dashed threshold "
            f"({share:.0%} of the budget in {long}: share x window / {long}, at least 1; 14.4 / 6 / 3 / 1 for 30 days). "
            "An SLO with its own spec.alerting.burnRates has its own factors.",
            [
                target("A", f"{r(long)} / {budget}", legend=long),
                target("B", f"{r(short)} / {budget}", legend=short),
                target("C", default, legend="threshold"),
            ],
            minimum=0,
            overrides=[
                override("threshold", ("color", {"mode": "fixed", "fixedColor": "red"}),
                         ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}), ("custom.fillOpacity", 0)),
            ],
        )

    rows = [
        (
            4,
            [
                (3, stat("Objective", "Share of good events the SLO promises over its window.",
                         one(latest("slo:objective:ratio", s)), unit="percentunit", decimals=3)),
                (3, stat("Window", "The SLO window.", f"max by (window) ({latest('slo:info', s)})", legend="{{window}}", text_mode="name")),
                (3, stat("SLI over the window", "Share of good events over the whole window, from the 5-minute tiles.",
                         f'1 - max(last_over_time({{__name__="slo:sli_error:ratio_rate$window", {s}}}[{TILED}]))',
                         unit="percentunit", decimals=3)),
                (3, stat("Budget left", "Fraction of the error budget left over the window (1 = untouched, 0 or less = spent).",
                         one(latest("slo:error_budget_remaining:ratio", s)), unit="percentunit", steps=BUDGET_STEPS, decimals=1)),
                (3, stat("Burn rate 1h", "Error ratio over the last hour / error budget: 1 spends the budget exactly over the window.",
                         f"{one(f'slo:sli_error:ratio_rate1h{{{s}}}')} / {budget}", steps=((None, "green"), (1, "orange"), (14.4, "red")), decimals=2)),
                (3, stat("Long-run burn (90d)", "Burn rate over the last 90 days (or the window, if longer), hourly: "
                         "below 0.3 the objective is too loose, above 1.5 too tight.",
                         one(latest("slo:long_run_burn:ratio", s, HOURLY)), steps=LONG_RUN_STEPS, decimals=2)),
                (3, stat("Long run covered", "How much data the long-run burn rests on, counted from the first midnight with data "
                         "(0 before that); the calibration tickets wait for the window and at least 28 days.",
                         f"{one(latest('slo:long_run_covered:seconds', s, HOURLY))}\nor on ()\n{one(latest('slo:info', s))} * 0",
                         unit="dtdurations")),
                (3, stat("State", "Exhausted: budget spent; Burning: a burn-rate alert fires; NoData: no budget (no traffic over the window, or no series).",
                         f"max({state(s)})", mappings=STATE_MAPPINGS)),
            ],
        ),
        (
            8,
            [
                (12, timeseries(
                    "SLI",
                    "Share of good events over 5 minutes and over an hour, against the objective.",
                    [
                        target("A", f"1 - {one(f'slo:sli_error:ratio_rate5m{{{s}}}')}", legend="5m"),
                        target("B", f"1 - {one(f'slo:sli_error:ratio_rate1h{{{s}}}')}", legend="1h"),
                        target("C", one(latest("slo:objective:ratio", s)), legend="objective"),
                    ],
                    unit="percentunit",
                    overrides=[override("objective", ("color", {"mode": "fixed", "fixedColor": "red"}),
                                        ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}), ("custom.fillOpacity", 0))],
                )),
                (12, timeseries(
                    "Error budget burn-down over the window",
                    "Fraction of the error budget left over the SLO window, shown over the last window (relative time $window).",
                    [target("A", one(latest("slo:error_budget_remaining:ratio", s)), legend="budget left")],
                    unit="percentunit", steps=BUDGET_STEPS, threshold_style="dashed",
                    timeFrom="$window",
                )),
            ],
        ),
        (8, [(6, tier(*t)) for t in TIERS]),
        (
            8,
            [
                (12, timeseries(
                    "Requests and errors",
                    "Per-second rates of all and of bad events, as the 5-minute tiles behind the window ratio record them.",
                    [
                        target("A", one(latest("slo:sli_total:tile_rate5m", s)), legend="all"),
                        target("B", one(latest("slo:sli_errors:tile_rate5m", s)), legend="bad"),
                    ],
                    unit="reqps", minimum=0,
                    overrides=[override("bad", ("color", {"mode": "fixed", "fixedColor": "red"}))],
                )),
                (12, state_timeline(
                    "Alerts",
                    "The SLO's alerts: burn-rate tiers (with their long window), SLONoTraffic, calibration tickets.",
                    [target(
                        "A",
                        or_none(
                            f'max by (alertname, severity, long) (ALERTS{{{s}, alertstate="firing"}} * 2 or ALERTS{{{s}, alertstate="pending"}})',
                            "alertname",
                        ),
                        legend="{{alertname}} {{severity}} {{long}}",
                    )],
                    [(0, "quiet", "green"), (1, "pending", "yellow"), (2, "firing", "red")],
                )),
            ],
        ),
    ]
    return dashboard(
        DETAIL,
        "slo-warden / SLO detail",
        "One ServiceLevelObjective: its SLI, the error budget over the window, burn rate per alerting tier, and its alerts.",
        [
            query_variable("namespace", "Namespace", "label_values(slo:info, namespace)", False),
            query_variable("slo", "SLO", 'label_values(slo:info{namespace="$namespace"}, slo)', False),
            query_variable("window", "Window", 'label_values(slo:info{namespace="$namespace", slo="$slo"}, window)', False, hide=2),
        ],
        rows,
        "now-24h",
        annotations=[
            {
                "name": "Burn-rate alerts",
                "datasource": DS,
                "enable": True,
                "hide": False,
                "iconColor": "red",
                "expr": f'ALERTS{{{s}, alertstate="firing", long!=""}}',
                "step": "1m",
                "titleFormat": "{{alertname}} {{severity}}",
                "textFormat": "burn over {{long}} and {{short}}",
                "tagKeys": "severity,long",
                "useValueForTime": False,
            },
            {
                "name": "Releases",
                "datasource": DS,
                "enable": True,
                "hide": False,
                "iconColor": "purple",
                # The start of the newest release of each workload the SLO's policies follow,
                # placed at that time (the value, in ms) and titled with its revision.
                "expr": f"({operator('slo_warden_release_started_timestamp_seconds', s)}) * 1000",
                "step": "1m",
                "titleFormat": "{{kind}} {{workload}} revision {{revision}}",
                "textFormat": "released: kubectl get slo $slo -o jsonpath='{.status.releases}' shows the budget it burned",
                "tagKeys": "workload,revision",
                "useValueForTime": True,
            },
        ],
    )


def policies():
    p = 'namespace=~"$namespace", policy=~"$policy"'
    ns = 'namespace=~"$namespace"'
    slo_ns = 'namespace=~"$namespace", slo!=""'
    in_stage = p + ', stage!=""'

    def held_by_kind(kind):
        matchers = f'{p}, kind="{kind}"'
        return f"sum by (namespace, policy) ({operator('slo_warden_policy_held_objects', matchers)})"

    stages = f'label_replace({operator("slo_warden_policy_stage", p)}, "stage", "none", "stage", "")'
    rows = [
        (
            4,
            [
                (4, stat("Policies", "ErrorBudgetPolicies the operator evaluates in the selected namespaces.",
                         f"count(max by (namespace, policy) ({operator('slo_warden_policy_stage', p)})) or vector(0)")),
                (4, stat("In a stage", "Policies in one of their stages now.",
                         f"count(max by (namespace, policy) ({operator('slo_warden_policy_stage', in_stage)} == 1)) or vector(0)",
                         steps=((None, "green"), (1, "orange")))),
                (4, stat("Objects held", "Deployments, Rollouts and Namespaces these policies hold paused or frozen "
                         "(an object two policies hold counts twice).",
                         f"sum({operator('slo_warden_policy_held_objects', p)}) or vector(0)", steps=((None, "green"), (1, "orange")))),
                (4, stat("Overridden", "Policies an active ErrorBudgetOverride lifts: they hold nothing until it expires.",
                         f"sum({operator('slo_warden_policy_overridden', p)}) or vector(0)", steps=((None, "green"), (1, "purple")))),
                (4, stat("Spent, not enforced", "SLOs of these namespaces whose budget is spent while no policy holds "
                         "anything for them: no policy, a dry run or an override.",
                         f"sum({operator('slo_warden_budget_exhausted_unenforced', ns)}) or vector(0)", steps=((None, "green"), (1, "red")))),
                (4, stat("Leading replicas", "Replicas holding the Lease: 1 when healthy (only the leader enforces).",
                         "sum(slo_warden_leader) or vector(0)", steps=((None, "red"), (1, "green"), (2, "red")))),
            ],
        ),
        (
            8,
            [
                (24, state_timeline(
                    "Stage",
                    "The stage each policy is in over time, one row per policy and stage (none: no stage, nothing held).",
                    [target("A", f"max by (namespace, policy, stage) ({stages})", legend="{{namespace}}/{{policy}}: {{stage}}")],
                    [(1, "in stage", "orange")],
                    overrides=[override("/: none$/", ("mappings", value_mappings([(1, "no stage", "green")])), by="byRegexp")],
                )),
            ],
        ),
        (
            8,
            [
                (12, table(
                    "Policies now",
                    "Each policy's stage and what it holds, by kind. Overridden: an ErrorBudgetOverride lifts it.",
                    [
                        target("A", f"max by (namespace, policy, stage) ({stages})", table=True),
                        *[
                            target(ref, held_by_kind(kind), table=True)
                            for ref, kind in zip("BCD", ["Deployment", "Rollout", "Namespace"])
                        ],
                        target("E", f"max by (namespace, policy) ({operator('slo_warden_policy_overridden', p)})", table=True),
                    ],
                    {"A": None, "B": "Deployments", "C": "Rollouts", "D": "Namespace", "E": "Overridden"},
                    overrides=[
                        override("namespace", ("links", [data_link(
                            "SLOs of this namespace",
                            f"/d/{OVERVIEW}?${{datasource:queryparam}}&var-namespace=${{__data.fields.namespace}}&${{__url_time_range}}",
                        )])),
                        override("Namespace", ("mappings", value_mappings([(0, "no", "green"), (1, "frozen", "red")])),
                                 ("custom.cellOptions", {"type": "color-background"})),
                        override("Overridden", ("mappings", value_mappings([(0, "no", "green"), (1, "yes", "purple")])),
                                 ("custom.cellOptions", {"type": "color-background"})),
                    ],
                )),
                (12, timeseries(
                    "Objects held over time",
                    "Objects each policy holds paused (Deployments, Rollouts) or frozen (its Namespace).",
                    [target("A", f"sum by (namespace, policy, kind) ({operator('slo_warden_policy_held_objects', p)})",
                            legend="{{namespace}}/{{policy}} {{kind}}")],
                    minimum=0, stack=True,
                )),
            ],
        ),
        (
            7,
            [
                (12, state_timeline(
                    "Overrides",
                    "While an ErrorBudgetOverride is active its policy releases everything it holds; its stage is still computed.",
                    [target("A", f"max by (namespace, policy) ({operator('slo_warden_policy_overridden', p)})", legend="{{namespace}}/{{policy}}")],
                    [(0, "enforced", "green"), (1, "overridden", "purple")],
                )),
                (12, state_timeline(
                    "Spent budgets, enforced or not",
                    "Every SLO of these namespaces: budget left; spent and held by a policy; or spent with nothing enforced "
                    "(no policy, a dry run or an override), "
                    "which slo_warden_budget_exhausted_unenforced reports and the chart's SloWardenBudgetExhaustedUnenforced alert pages on.",
                    [target(
                        "A",
                        f"{per_slo(operator('slo_warden_budget_exhausted_unenforced', ns))} * 0 + 2\n"
                        f"or on (namespace, slo)\n"
                        f"({remaining(slo_ns)} <= 0) * 0 + 1\n"
                        f"or on (namespace, slo)\n"
                        f"{info(slo_ns)} * 0",
                        legend="{{namespace}}/{{slo}}",
                    )],
                    [(0, "budget left", "green"), (1, "spent, enforced", "orange"), (2, "spent, NOT enforced", "red")],
                    links=[detail_link("${__field.labels.namespace}", "${__field.labels.slo}")],
                )),
            ],
        ),
        (
            7,
            [
                (6, timeseries(
                    "Enforcement actions",
                    "Changes made to enforce or release policies (all namespaces), by action and result.",
                    [target("A", or_none("sum by (action, result) (increase(slo_warden_enforcement_actions_total[$__rate_interval]))", "action"),
                            legend="{{action}} {{result}}")],
                    minimum=0,
                )),
                (6, timeseries(
                    "Prometheus queries",
                    "Budget queries per second by result; every poll sends a fixed handful, whatever the number of SLOs.",
                    [target("A", or_none("sum by (result) (rate(slo_warden_prometheus_queries_total[$__rate_interval]))", "result"),
                            legend="{{result}}")],
                    unit="reqps", minimum=0,
                    overrides=[override("error", ("color", {"mode": "fixed", "fixedColor": "red"}))],
                )),
                (6, timeseries(
                    "Reconcile failures",
                    "Failed reconciles by controller and reason (the policy controller's keep Ready=False with the error).",
                    [target("A", or_none("sum by (controller, reason) (increase(slo_warden_reconcile_failures_total[$__rate_interval]))", "reason"),
                            legend="{{controller}} {{reason}}")],
                    minimum=0,
                )),
                (6, timeseries(
                    "Admission reviews",
                    "Admission reviews answered by every replica, by webhook and result (denied: a release refused in a frozen namespace).",
                    [target("A", or_none("sum by (webhook, result) (rate(slo_warden_admission_reviews_total[$__rate_interval]))", "result"),
                            legend="{{webhook}} {{result}}")],
                    unit="reqps", minimum=0,
                )),
            ],
        ),
    ]
    return dashboard(
        POLICIES,
        "slo-warden / Policies",
        "ErrorBudgetPolicies: the stage of each over time, what they hold, overrides, and spent budgets nothing enforces.",
        [
            query_variable("namespace", "Namespace", "label_values(slo_warden_policy_stage, namespace)", True),
            query_variable("policy", "Policy", 'label_values(slo_warden_policy_stage{namespace=~"$namespace"}, policy)', True),
        ],
        rows,
        "now-6h",
    )


FILES = {"slo-overview.json": overview, "slo-detail.json": detail, "slo-policies.json": policies}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for name, build in FILES.items():
        path = os.path.join(HERE, name)
        text = render(build)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote dashboards/{name}")
    if stale:
        print(f"dashboards/{', '.join(stale)} differ from dashboards/generate.py: run `make generate`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
