#!/usr/bin/env python3
"""Writes the Grafana dashboards of dashboards/grafana/dashboards/ (python3, standard library only).

The JSON files are what Grafana and the integration test (tests/integration/test_prometheus.cpp)
read; this script is how they were made. To add a lesson to a family, or panels for a lesson's
own metrics, edit FAMILIES below (a lesson's metrics come from `hldlab info --json`) and run:
    python3 dashboards/tools/make_dashboards.py build/hldlab
"""
import json, os, subprocess, sys
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

def metric_panel(lesson, m):
    """One panel per declared lesson metric: cumulative for counters, as is for gauges."""
    sel = f'lesson="{lesson}", experiment=~"$experiment", variant=~"$variant"'
    legend = '{{variant}}' + (' · %s {{%s}}' % (m['label'], m['label']) if m['label'] else '')
    name = m['name']
    unit = 's' if name.endswith('_seconds') else 'bytes' if name.endswith('_bytes') else 'short'
    title = name[len('hldlab_' + lesson + '_'):].replace('_', ' ')
    title = (title[:-len(' total')] + ' (cumulative)') if m['kind'] == 'counter' else title
    return panel(title[0].upper() + title[1:], [q(f'{name}{{{sel}}}', legend)], unit, m['help'] + '.', w=8)

def lesson_rows(info):
    """A row per lesson with a panel for each metric it declares."""
    if not info['metrics']:
        return []
    return [row(f"{info['name']}: {info['title']}")] + [metric_panel(info['name'], m) for m in info['metrics']]

# (family, title, its lessons: the built ones get a row with their metrics; a family with no built
# lesson gets no dashboard)
FAMILIES = [
    ("traffic", "Traffic: load balancing, rate limiting, scaling", "load_balancing|rate_limiting|horizontal_scaling"),
    ("caching", "Caching: policies and cache problems", "caching|cache_problems"),
    ("partitioning", "Partitioning: consistent hashing, sharding", "consistent_hashing|sharding"),
    ("replication", "Replication: replicas, quorums, consensus, clocks", "replication|quorum_cap|consensus|vector_clocks"),
    ("resilience", "Resilience: circuit breakers, retries, idempotency", "circuit_breaker|retry_backoff|idempotency"),
    ("distributed", "Distributed workflows: sagas, ids, locks, reservations", "saga|snowflake_ids|distributed_locking|ticketmaster"),
    ("messaging", "Messaging: queues, logs, outbox, event sourcing, schedulers, streams", "message_queue|kafka_log|outbox|event_sourcing|scheduler_notifications|click_analytics"),
    ("structures", "Data structures: Bloom filters, sketches, leaderboards, geo, tries, indexes", "bloom_filter|hyperloglog|heavy_hitters|leaderboard|geo_index|autocomplete|db_indexing"),
    ("edge", "Edge and APIs: CDN, API design, RPC encoding, tail latency, URL shortener", "cdn|api_design|rpc_encoding|tail_at_scale|url_shortener"),
    ("cases", "Case studies: feed, chat, file sync, video, crawler, search, monitoring", "news_feed|chat|file_sync|video_streaming|web_crawler|distributed_search|metrics_monitoring"),
    ("ai", "AI serving: LLM serving, semantic cache, vector index", "llm_serving|semantic_cache|vector_index"),
    ("consistency", "Consistency: transactions, concurrency, chaos", "acid_transactions|concurrency|chaos"),
]

def lesson_info(hldlab, lesson):
    """`hldlab info --json lesson`, or None when the lesson is not built."""
    run = subprocess.run([hldlab, 'info', '--json', lesson], capture_output=True, text=True)
    return json.loads(run.stdout) if run.returncode == 0 else None

if len(sys.argv) != 2:
    sys.exit('usage: python3 dashboards/tools/make_dashboards.py build/hldlab')
HLDLAB = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
def write(name, d):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(d, f, indent=2, ensure_ascii=False); f.write('\n')
write('hldlab-overview.json', dashboard('hldlab-overview', 'hldlab overview',
    'Every system of every experiment: latency percentiles, throughput, hit ratio, error and rejection rates; faults as annotations.', overview))
for fam, title, lessons in FAMILIES:
    infos = [i for i in (lesson_info(HLDLAB, l) for l in lessons.split('|')) if i is not None]
    path = os.path.join(OUT, f'hldlab-{fam}.json')
    if not infos:  # no lesson of the family is built: no dashboard
        if os.path.exists(path): os.remove(path)
        continue
    items = common(hit=(fam == 'caching')) + [p for i in infos for p in lesson_rows(i)]
    write(f'hldlab-{fam}.json', dashboard(f'hldlab-{fam}', f'hldlab {title}',
        f'Lessons of the {fam} family ({lessons.replace("|", ", ")}): core metrics, and a row per lesson with each metric it declares.', items, lessons, tags=(fam,)))
