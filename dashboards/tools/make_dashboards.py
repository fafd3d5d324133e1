#!/usr/bin/env python3
"""Writes the Grafana dashboards of dashboards/grafana/dashboards/ (python3, standard library only).

The JSON files are what Grafana and the integration test (tests/integration/test_prometheus.cpp)
read; this script is how they were made. To add a lesson to a family, or panels for a lesson's
own metrics, edit FAMILIES / extra below and run:  python3 dashboards/tools/make_dashboards.py
"""
import json, os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'grafana', 'dashboards')
DS = {"type": "prometheus", "uid": "hldlab-prometheus"}
F = 'experiment=~"$experiment", lesson=~"$lesson", variant=~"$variant"'
BY = 'experiment, lesson, variant'
RI = '$__rate_interval'
LEG = '{{variant}} ({{experiment}})'

def q(e, legend=LEG, ref='A'):
    return {"datasource": DS, "expr": e, "legendFormat": legend, "refId": ref, "range": True}

def quantile(p):
    return f'histogram_quantile({p}, sum by ({BY}, le) (rate(hldlab_request_duration_seconds_bucket{{{F}}}[{RI}])))'

def ratio(num_sel, den_sel='', extra=''):
    return (f'sum by ({BY}) (rate({num_sel}[{RI}]))\n/\n'
            f'(sum by ({BY}) (rate({den_sel}[{RI}])) > 0)')

THROUGHPUT = f'sum by ({BY}) (rate(hldlab_requests_total{{outcome=~"ok|hit|miss", {F}}}[{RI}]))'
ARRIVALS = f'sum by ({BY}) (rate(hldlab_requests_arrived_total{{{F}}}[{RI}]))'
ERRORS = ratio(f'hldlab_requests_total{{outcome=~"error|timeout", {F}}}', f'hldlab_requests_total{{{F}}}')
REJECTED = ratio(f'hldlab_requests_total{{outcome="rejected", {F}}}', f'hldlab_requests_total{{{F}}}')
HITS = (f'sum by ({BY}) (rate(hldlab_cache_hits_total{{{F}}}[{RI}]))\n/\n'
        f'(sum by ({BY}) (rate(hldlab_cache_hits_total{{{F}}}[{RI}]) + rate(hldlab_cache_misses_total{{{F}}}[{RI}])) > 0)')
INFLIGHT = f'sum by ({BY}) (hldlab_requests_in_flight{{{F}}})'
OUTCOMES = f'sum by (outcome) (rate(hldlab_requests_total{{{F}}}[{RI}]))'
FAULTS = f'sum by ({BY}, fault) (hldlab_faults_injected_total{{{F}}}) > 0'
FAULTS_ALL = f'sum by ({BY}, fault) (hldlab_faults_injected_total{{{F}}})'
CLOCK = 'hldlab_virtual_time_seconds{experiment=~"$experiment"}'
SPEED = f'deriv(hldlab_virtual_time_seconds{{experiment=~"$experiment"}}[{RI}])'
LESSON_COUNTERS = '{__name__=~"hldlab_(${lesson:regex})_.+_total", experiment=~"$experiment", variant=~"$variant"}'
LESSON_GAUGES = '{__name__=~"hldlab_(${lesson:regex})_.+", __name__!~".+_total", experiment=~"$experiment", variant=~"$variant"}'

def panel(title, targets, unit='short', desc='', kind='timeseries', w=12, h=8, minv=None, maxv=None, stack=False):
    p = {"type": kind, "title": title, "description": desc, "datasource": DS,
         "targets": [t if isinstance(t, dict) else q(t) for t in targets],
         "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False}}, "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi", "sort": "desc"}},
         "gridPos": {"w": w, "h": h}}
    if minv is not None: p["fieldConfig"]["defaults"]["min"] = minv
    if maxv is not None: p["fieldConfig"]["defaults"]["max"] = maxv
    if stack: p["fieldConfig"]["defaults"]["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    return p

def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}

def layout(items):
    x = y = 0; rowh = 0; pid = 1
    for it in items:
        g = it["gridPos"]
        if it["type"] == "row" or x + g["w"] > 24:
            x = 0; y += rowh; rowh = 0
        g["x"], g["y"] = x, y
        it["id"] = pid; pid += 1
        x += g["w"]; rowh = max(rowh, g["h"])
        if it["type"] == "row":
            x = 0; y += g["h"]; rowh = 0
    return items

def var(name, label, query, hide=0):
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "query": {"query": query, "refId": f"{name}-query", "qryType": 1}, "definition": query,
            "refresh": 2, "includeAll": True, "multi": True, "sort": 1, "hide": hide,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "regex": ""}

def constant(name, value):
    return {"type": "constant", "name": name, "label": name, "hide": 2, "query": value,
            "current": {"text": value, "value": value}, "options": [{"selected": True, "text": value, "value": value}]}

FAULT_ANNOTATION = {
    "name": "Faults injected", "enable": True, "datasource": DS, "iconColor": "red",
    "expr": f'sum by ({BY}, fault) (changes(hldlab_faults_injected_total{{{F}}}[15s])) > 0',
    "step": "5s", "titleFormat": "fault {{fault}}", "textFormat": "{{fault}} injected into {{variant}} ({{experiment}})",
    "tagKeys": "fault,variant,experiment", "useValueForTime": False}
BUILTIN = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
           "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}

def dashboard(uid, title, desc, items, lesson_filter=None, tags=()):
    lesson_sel = 'hldlab_requests_arrived_total{experiment=~"$experiment"}' if lesson_filter is None else \
        'hldlab_requests_arrived_total{experiment=~"$experiment", lesson=~"$family_lessons"}'
    templ = []
    if lesson_filter is not None: templ.append(constant("family_lessons", lesson_filter))
    templ += [var("experiment", "experiment", 'label_values(hldlab_requests_arrived_total, experiment)'),
              var("lesson", "lesson", f'label_values({lesson_sel}, lesson)'),
              var("variant", "variant (system)", 'label_values(hldlab_requests_arrived_total{experiment=~"$experiment", lesson=~"$lesson"}, variant)')]
    links = [{"title": "hldlab dashboards", "type": "dashboards", "tags": ["hldlab"], "asDropdown": True, "includeVars": True, "keepTime": True}]
    return {"uid": uid, "title": title, "description": desc, "tags": ["hldlab", *tags], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1, "refresh": "5s",
            "time": {"from": "now-15m", "to": "now"}, "links": links,
            "annotations": {"list": [BUILTIN, FAULT_ANNOTATION]},
            "templating": {"list": templ}, "panels": layout(items)}

LAT = 'Latency from arrival to completion in virtual time, per system (the variant label is the system label).'
def common(hit=False):
    items = [row("Latency"),
        panel("P50 latency", [quantile(0.5)], 's', LAT, w=8),
        panel("P99 latency", [quantile(0.99)], 's', LAT, w=8),
        panel("P99.9 latency", [quantile(0.999)], 's', LAT, w=8),
        row("Traffic"),
        panel("Throughput (successful requests/s)", [THROUGHPUT], 'reqps', 'Requests completed ok, hit or miss (the ok/s of lab.report) per wall-clock second as Prometheus sees them: equal to the simulated rate at --pace 1, X times it at --pace X.', w=8),
        panel("Arrivals (requests/s)", [ARRIVALS], 'reqps', 'Requests handed to each system per second.', w=8),
        panel("In flight", [INFLIGHT], 'short', 'Requests arrived and not completed yet: queues building up.', w=8),
        row("Errors and rejections"),
        panel("Error rate (errors + timeouts)", [ERRORS], 'percentunit', 'Fraction of completed requests that failed or timed out.', w=8, minv=0, maxv=1),
        panel("Rejection rate", [REJECTED], 'percentunit', 'Fraction of completed requests rejected (rate limiting, load shedding, 429s).', w=8, minv=0, maxv=1)]
    if hit:
        items.append(panel("Cache hit ratio", [HITS], 'percentunit', 'hits / (hits + misses), for systems that answer hit or miss.', w=8, minv=0, maxv=1))
    else:
        items.append(panel("Requests by outcome (/s)", [q(OUTCOMES, '{{outcome}}')], 'reqps', 'Completed requests per second, by outcome.', w=8, stack=True))
    return items

overview = common(hit=True) + [
    panel("Requests by outcome (/s)", [q(OUTCOMES, '{{outcome}}')], 'reqps', 'Completed requests per second, by outcome.', w=12, stack=True),
    panel("Faults injected (cumulative)", [q(FAULTS_ALL, '{{fault}} → {{variant}} ({{experiment}})')], 'short', 'Fault activations per system (also shown as red annotations).', w=12),
    panel("Virtual clock", [q(CLOCK, '{{experiment}}')], 's', 'Each experiment\'s simulated time: where the run is (fault times in scripts are on this clock).', w=12),
    panel("Simulation speed (virtual s per wall s)", [q(SPEED, '{{experiment}}')], 'short', 'How fast virtual time advances: the --pace factor when the machine keeps up, lower when it cannot.', w=12)]

def lesson_panels(gauges):
    items = [row("Lesson metrics"),
        panel("Lesson counters (cumulative)", [q(LESSON_COUNTERS, '{{__name__}} · {{variant}}')], 'short', 'Every counter the selected lessons declare (hldlab_<lesson>_<name>_total), per system.')]
    if gauges:
        items.append(panel("Lesson gauges", [q(LESSON_GAUGES, '{{__name__}} · {{variant}}')], 'short', 'Every gauge the selected lessons declare (hldlab_<lesson>_<name>), per system.'))
    return items

# (family, title, its lessons (built ones and catalogue ones to come), whether a built lesson of
# the family declares a gauge: the integration test requires every panel to return data)
FAMILIES = [
    ("traffic", "Traffic: load balancing, rate limiting, scaling", "load_balancing|rate_limiting|llm_serving|horizontal_scaling|api_gateway", True),
    ("caching", "Caching: policies, cache problems, CDN", "caching|cache_problems|cdn", True),
    ("partitioning", "Partitioning: consistent hashing, sharding", "consistent_hashing|sharding|geo_index|distributed_search", True),
    ("replication", "Replication: replicas, quorums, consensus", "replication|quorum_cap|consensus|vector_clocks", False),
    ("resilience", "Resilience: circuit breakers, retries, idempotency, chaos", "circuit_breaker|retry_backoff|idempotency|chaos|bulkhead", True),
    ("distributed", "Distributed workflows: sagas, queues, logs, ids, locks", "saga|message_queue|kafka_log|snowflake_ids|distributed_locking|ticketmaster|event_sourcing", False),
]
LB = 'lesson="load_balancing", experiment=~"$experiment", variant=~"$variant"'
CB = 'lesson="circuit_breaker", experiment=~"$experiment", variant=~"$variant"'
extra = {"traffic": [row("load_balancing"),
    panel("Backends in rotation", [f'hldlab_load_balancing_backends_in_rotation{{{LB}}}'], 'short', 'Backends the balancer routes to; drops when a health check removes a dead one.', w=8),
    panel("Requests failed by a dead backend (cumulative)", [f'hldlab_load_balancing_dead_backend_errors_total{{{LB}}}'], 'short', 'Requests routed to a killed backend before it left the rotation.', w=8),
    panel("Health-check removals (cumulative)", [f'hldlab_load_balancing_health_check_removals_total{{{LB}}}'], 'short', 'Backends removed from rotation by failed health checks.', w=8)],
  "resilience": [row("circuit_breaker"),
    panel("Breaker state per downstream (0 closed, 1 open, 2 half-open)", [q(f'hldlab_circuit_breaker_state{{{CB}}}', 'downstream {{downstream}} · {{variant}}')], 'short', 'The state machine of each breaker over time: it opens when the failure rate crosses the threshold, probes when half-open, closes when probes succeed.', w=12),
    panel("Connections in use", [q(f'hldlab_circuit_breaker_connections_in_use{{{CB}}}', '{{variant}}')], 'short', 'The caller\'s pool: without a breaker or bulkhead a hanging downstream holds every connection.', w=12)]}

os.makedirs(OUT, exist_ok=True)
def write(name, d):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(d, f, indent=2, ensure_ascii=False); f.write('\n')
write('hldlab-overview.json', dashboard('hldlab-overview', 'hldlab overview',
    'Every system of every experiment: latency percentiles, throughput, hit ratio, error and rejection rates; faults as annotations.', overview))
for fam, title, lessons, gauges in FAMILIES:
    items = common(hit=(fam == 'caching')) + lesson_panels(gauges) + extra.get(fam, [])
    write(f'hldlab-{fam}.json', dashboard(f'hldlab-{fam}', f'hldlab {title}',
        f'Lessons of the {fam} family ({lessons.replace("|", ", ")}): core metrics and every lesson metric.', items, lessons, tags=(fam,)))
