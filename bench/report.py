#!/usr/bin/env python3
"""bench/report.py: the number crunching behind bench/run.sh.

  report.py h2load OUT.txt LOG     one h2load run -> "key value" lines on stdout
  report.py rusage FILE CMD...     runs CMD, writes its CPU seconds (user+sys) to FILE
  report.py report RAW VERSIONS MD JSON
                                   every run (RAW: round, target, metric, value
                                   per line) -> the tables in MD and JSON

Rounds are summarised as the median, with min-max when there are several.
SPDX-License-Identifier: MIT
"""
import json
import re
import resource
import statistics
import subprocess
import sys

TARGETS = ["direct", "switchyard-w1", "switchyard-w2", "switchyard-trace0.01", "switchyard-trace1",
           "switchyard-rest", "switchyard-rr3", "switchyard-lr3", "nginx", "haproxy"]
SY = "switchyard-w1"


def h2load(txt_path, log_path):
    txt = open(txt_path).read()
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", txt)
    r = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        txt,
    )
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", txt)
    if not (m and r and s):
        sys.exit("cannot parse h2load output")
    done, succeeded, failed, errored, timeout = (int(r.group(i)) for i in range(3, 8))
    ok2xx, not2xx = int(s.group(1)), sum(int(s.group(i)) for i in (2, 3, 4))
    # Streams still open when the duration ends may have had their :status only.
    if failed or errored or timeout or not2xx or ok2xx < succeeded or succeeded == 0:
        sys.exit(
            f"h2load: {succeeded} succeeded, {failed} failed, {errored} errored, "
            f"{timeout} timeout, {ok2xx} 2xx, {not2xx} other statuses"
        )
    lat = []
    with open(log_path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) >= 3:
                if cols[1] != "200":
                    sys.exit(f"h2load log: a response with status {cols[1]}")
                lat.append(int(cols[2]))
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]

    print("rps", m.group(1))
    print("done", done)
    print("succeeded", succeeded)
    print("mean_us", round(statistics.fmean(lat), 1))
    print("p50_us", pct(50))
    print("p90_us", pct(90))
    print("p99_us", pct(99))
    print("p999_us", pct(99.9))
    print("max_us", lat[-1])


def load_raw(path):
    runs = {}  # target -> round -> metric -> value
    for line in open(path):
        rnd, target, metric, value = line.rstrip("\n").split("\t")
        runs.setdefault(target, {}).setdefault(rnd, {})[metric] = float(value)
    return runs


def derive(m, direct_c1):
    """Per-round figures of one target from its raw metrics."""
    d = {}

    def put(key, fn):
        try:
            d[key] = fn()
        except (KeyError, ZeroDivisionError):
            pass

    put("calls_per_s", lambda: m["sat.rps"])
    put("sat_p50_ms", lambda: m["sat.p50_us"] / 1000)
    put("sat_p99_ms", lambda: m["sat.p99_us"] / 1000)
    put("rate_p50_ms", lambda: m["rate.p50_us"] / 1000)
    put("rate_p99_ms", lambda: m["rate.p99_us"] / 1000)
    put("c1_mean_us", lambda: m["c1.mean_us"])
    if direct_c1 is not None:
        put("c1_added_us", lambda: m["c1.mean_us"] - direct_c1)
    put("cpu_us_per_call", lambda: m["sat.cpu_s"] / m["sat.backend_ok"] * 1e6)
    put("rate_cpu_us_per_call", lambda: m["rate.cpu_s"] / m["rate.backend_ok"] * 1e6)
    put("rate_calls_per_s", lambda: m["rate.rps"])
    for case in ("bidi", "bidi_paced", "bidi_churn"):
        put(case + "_msgs_per_s", lambda c=case: m[c + ".msgs_per_s"])
        put(case + "_cpu_us_per_msg", lambda c=case: m[c + ".cpu_s"] / m[c + ".messages"] * 1e6)
        put(case + "_missed", lambda c=case: m[c + ".missed"])
    put("workers", lambda: m["workers"])
    put("backend_cpu_us_per_call", lambda: m["sat.backend_cpu_s"] / m["sat.backend_ok"] * 1e6)
    put("backend_cpu_pct", lambda: m["sat.backend_cpu_s"] / m["sat.wall_s"] * 100)
    put("proxy_cpu_pct", lambda: m["sat.cpu_s"] / m["sat.wall_s"] * 100)
    put("loadgen_cpu_pct", lambda: m["sat.loadgen_cpu_s"] / m["sat.wall_s"] * 100)
    put("stream_mb_per_s", lambda: m["stream.mbps"])
    put("cpu_us_per_msg", lambda: m["stream.cpu_s"] / m["stream.messages"] * 1e6)
    put("peak_rss_mib", lambda: m["peak_rss_kb"] / 1024)
    put(
        "idle_kib_per_conn",
        lambda: (m["idle.rss_after_kb"] - m["idle.rss_before_kb"]) / m["idle.conns"],
    )
    for case in ("web", "web_h1"):
        put(case + "_calls_per_s", lambda c=case: m[c + ".rps"])
        put(case + "_p50_ms", lambda c=case: m[c + ".p50_us"] / 1000)
        put(case + "_cpu_us_per_call", lambda c=case: m[c + ".cpu_s"] / m[c + ".backend_ok"] * 1e6)
    put("checked_ok", lambda: m["check.ok"])
    put("checked", lambda: m["check.calls"])
    return d


def summarise(values):
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }


def fmt(s, digits):
    if s is None:
        return "—"
    text = f"{s['median']:.{digits}f}"
    if s["n"] > 1 and s["min"] != s["max"]:
        text += f" ({s['min']:.{digits}f}–{s['max']:.{digits}f})"
    return text


def report(raw_path, versions_path, md_path, json_path):
    runs = load_raw(raw_path)
    meta = {}
    for line in open(versions_path):
        k, _, v = line.rstrip("\n").partition(" ")
        meta[k] = v
    rounds_direct = runs.get("direct", {})
    figures = {}
    scale = sorted((t for t in runs if t.startswith("switchyard-scale")),
                   key=lambda t: int(t[len("switchyard-scale"):]))
    for target in [t for t in TARGETS if t in runs] + scale:
        per_round = []
        for rnd, m in runs[target].items():
            dc1 = rounds_direct.get(rnd, {}).get("c1.mean_us")
            per_round.append(derive(m, dc1))
        keys = sorted({k for r in per_round for k in r})
        figures[target] = {k: summarise([r[k] for r in per_round if k in r]) for k in keys}

    def g(target, key):
        return figures.get(target, {}).get(key)

    proxies = [t for t in figures if t != "direct"]
    out = []
    if scale:
        return report_scaling(figures, scale, meta, md_path, json_path)
    out.append(f"## switchyard benchmark, {meta.get('date', '')}")
    out.append("")
    out.append(
        f"{meta.get('cpu', '')}; Linux {meta.get('kernel', '')}; switchyard {meta.get('switchyard', '')}, "
        f"nginx {meta.get('nginx', '')}, HAProxy {meta.get('haproxy', '')}, h2load {meta.get('h2load', '')}."
    )
    out.append(f"Parameters: {meta.get('params', '')}.")
    out.append("")
    out.append(
        "Unary calls. *sat*: h2load at saturation; *rate*: fixed moderate rate; *c1*: one "
        "call at a time (mean latency, and what the proxy adds over direct). CPU µs/call is the "
        "proxy's own utime+stime per call (for direct, the backend's); the CPU % columns are "
        "shares of one core during the saturation run, for the proxy, the echo backend and h2load. "
        "*switchyard-rest*: the same Unary call as a REST GET (`/v1/echo/{payload}`, "
        "google.api.http), transcoded by switchyard (path variable to protobuf, response to JSON); "
        "one worker, saturation case only. *switchyard-rr3* / *switchyard-lr3*: one worker in front "
        "of three echo backends with `policy = round_robin` / `least_request` (saturation case "
        "only; the backend CPU % column counts the first backend alone)."
    )
    out.append("")
    out.append(
        "| target | calls/s (sat) | p50 / p99 ms (sat) | p50 / p99 ms (rate) | c1 mean µs | "
        "c1 added µs | CPU µs/call | proxy CPU % | backend CPU % | h2load CPU % | gRPC check |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in figures:
        direct = t == "direct"
        cpu = g(t, "backend_cpu_us_per_call") if direct else g(t, "cpu_us_per_call")
        chk = g(t, "checked_ok")
        chk_total = g(t, "checked")
        out.append(
            f"| {t} | {fmt(g(t, 'calls_per_s'), 0)} | {fmt(g(t, 'sat_p50_ms'), 2)} / "
            f"{fmt(g(t, 'sat_p99_ms'), 2)} | {fmt(g(t, 'rate_p50_ms'), 3)} / "
            f"{fmt(g(t, 'rate_p99_ms'), 3)} | {fmt(g(t, 'c1_mean_us'), 0)} | "
            f"{'—' if direct else fmt(g(t, 'c1_added_us'), 0)} | {fmt(cpu, 1)} | "
            f"{'—' if direct else fmt(g(t, 'proxy_cpu_pct'), 0)} | {fmt(g(t, 'backend_cpu_pct'), 0)} | "
            f"{fmt(g(t, 'loadgen_cpu_pct'), 0)} | "
            f"{'—' if chk is None else '%d/%d OK' % (chk['min'], chk_total['median'])} |"
        )
    rr, lr = g("switchyard-rr3", "cpu_us_per_call"), g("switchyard-lr3", "cpu_us_per_call")
    if rr and lr and rr["median"]:
        out.append("")
        out.append(
            f"Balancing policy cost (three backends, 1 worker): least_request "
            f"{fmt(lr, 1)} µs of CPU per call, round_robin {fmt(rr, 1)}; ratio of the medians "
            f"{lr['median'] / rr['median']:.2f}."
        )
    out.append("")
    out.append(
        "Streaming (one bidi stream, echoed messages; MB/s in one direction), memory "
        "(peak RSS after the load cases; RSS growth per idle HTTP/2 connection)."
    )
    out.append("")
    out.append("| target | stream MB/s | CPU µs/msg | peak RSS MiB | RSS KiB/idle conn |")
    out.append("|---|---:|---:|---:|---:|")
    for t in figures:
        direct = t == "direct"
        out.append(
            f"| {t} | {fmt(g(t, 'stream_mb_per_s'), 1)} | "
            f"{'—' if direct else fmt(g(t, 'cpu_us_per_msg'), 2)} | "
            f"{'—' if direct else fmt(g(t, 'peak_rss_mib'), 1)} | "
            f"{'—' if direct else fmt(g(t, 'idle_kib_per_conn'), 2)} |"
        )
    bidi = [t for t in figures if g(t, "bidi_msgs_per_s") is not None]
    if bidi:
        out.append("")
        out.append(
            "Bidi streams of small messages (sy-benchclient bidi: the payload of the unary "
            "calls, one message in flight per stream, as many streams as sat has calls): at "
            "saturation; paced to a fixed rate in all; at saturation with a new stream every "
            "few messages (*churn*). CPU µs/msg is the proxy's own per echoed message (for "
            "direct, the backend's); *missed*: paced messages no idle stream could take."
        )
        out.append("")
        out.append(
            "| target | msgs/s (sat) | CPU µs/msg (sat) | msgs/s (paced) | CPU µs/msg (paced) "
            "| missed (paced) | msgs/s (churn) | CPU µs/msg (churn) |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t in bidi:
            out.append(
                f"| {t} | {fmt(g(t, 'bidi_msgs_per_s'), 0)} | {fmt(g(t, 'bidi_cpu_us_per_msg'), 2)} | "
                f"{fmt(g(t, 'bidi_paced_msgs_per_s'), 0)} | {fmt(g(t, 'bidi_paced_cpu_us_per_msg'), 2)} | "
                f"{fmt(g(t, 'bidi_paced_missed'), 0)} | {fmt(g(t, 'bidi_churn_msgs_per_s'), 0)} | "
                f"{fmt(g(t, 'bidi_churn_cpu_us_per_msg'), 2)} |"
            )
    out.append("")
    out.append(
        "Unary CPU at a fixed rate (*rate*: every call wakes the loop): the proxy's own "
        "CPU µs per call, beside saturation's."
    )
    out.append("")
    out.append("| target | calls/s (rate) | CPU µs/call (rate) | CPU µs/call (sat) |")
    out.append("|---|---:|---:|---:|")
    for t in figures:
        direct = t == "direct"
        out.append(
            f"| {t} | {fmt(g(t, 'rate_calls_per_s'), 0)} | {fmt(g(t, 'rate_cpu_us_per_call'), 1)} | "
            f"{fmt(g(t, 'backend_cpu_us_per_call') if direct else g(t, 'cpu_us_per_call'), 1)} |"
        )
    web = [t for t in proxies if g(t, "web_calls_per_s") is not None]
    if web:
        out.append("")
        out.append(
            "gRPC-Web unary (switchyard only): the saturation case sent as gRPC-Web "
            "(application/grpc-web+proto) over HTTP/2 and over HTTP/1.1 (h2load --h1, one "
            "call at a time on each of as many connections as sat has calls in flight), beside "
            "native gRPC; CPU µs/call is switchyard's own."
        )
        out.append("")
        out.append(
            "| target | native calls/s | native CPU µs/call | web h2 calls/s | web h2 CPU µs/call "
            "| web HTTP/1.1 calls/s | web HTTP/1.1 CPU µs/call | web HTTP/1.1 p50 ms |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t in web:
            out.append(
                f"| {t} | {fmt(g(t, 'calls_per_s'), 0)} | {fmt(g(t, 'cpu_us_per_call'), 1)} | "
                f"{fmt(g(t, 'web_calls_per_s'), 0)} | {fmt(g(t, 'web_cpu_us_per_call'), 1)} | "
                f"{fmt(g(t, 'web_h1_calls_per_s'), 0)} | {fmt(g(t, 'web_h1_cpu_us_per_call'), 1)} | "
                f"{fmt(g(t, 'web_h1_p50_ms'), 2)} |"
            )
    ratio_keys = [
        ("calls/s (sat), higher is better", "calls_per_s"),
        ("p50 latency (sat)", "sat_p50_ms"),
        ("p99 latency (sat)", "sat_p99_ms"),
        ("p50 latency (rate)", "rate_p50_ms"),
        ("p99 latency (rate)", "rate_p99_ms"),
        ("latency added at c1", "c1_added_us"),
        ("CPU per call (sat)", "cpu_us_per_call"),
        ("CPU per call (rate)", "rate_cpu_us_per_call"),
        ("CPU per bidi message (sat)", "bidi_cpu_us_per_msg"),
        ("CPU per bidi message (paced)", "bidi_paced_cpu_us_per_msg"),
        ("CPU per bidi message (churn)", "bidi_churn_cpu_us_per_msg"),
        ("bidi msgs/s (sat), higher is better", "bidi_msgs_per_s"),
        ("CPU per streamed 64 KiB message", "cpu_us_per_msg"),
        ("stream MB/s, higher is better", "stream_mb_per_s"),
        ("peak RSS", "peak_rss_mib"),
        ("RSS per idle connection", "idle_kib_per_conn"),
    ]
    ratios = {}
    peers = [p for p in ("nginx", "haproxy") if p in figures]
    if SY in figures and peers:
        out.append("")
        out.append(
            "Ratios, switchyard (1 worker) / peer, medians; below 1 means switchyard "
            "uses less (or is faster), except where higher is better."
        )
        out.append("")
        out.append("| figure | " + " | ".join(f"switchyard / {p}" for p in peers) + " |")
        out.append("|---|" + "---:|" * len(peers))
        for label, key in ratio_keys:
            row = []
            for p in peers:
                a, b = g(SY, key), g(p, key)
                if a is None or b is None or b["median"] <= 0:
                    row.append("—")
                    continue
                r = a["median"] / b["median"]
                ratios.setdefault(p, {})[key] = round(r, 3)
                row.append(f"{r:.2f}")
            out.append(f"| {label} | " + " | ".join(row) + " |")
    targets = issue_targets(g)
    if targets:
        out.append("")
        out.append(
            "Issue 18's targets, switchyard with 1 worker against the peers' medians of this run."
        )
        out.append("")
        out.append("| figure | switchyard | HAProxy | nginx | target | met |")
        out.append("|---|---:|---:|---:|---|---|")
        for row in targets:
            out.append(
                f"| {row['figure']} | {row['switchyard']} | {row['haproxy']} | {row['nginx']} | "
                f"{row['target']} | {row['met']} |"
            )
    out.append("")
    out.append(
        "Loopback on a shared VM: absolute figures are noisy; compare ratios within one run."
    )
    if meta.get("load"):
        out.append(f"Load average (1, 5, 15 min) when the report was written: {meta['load']}.")
    md = "\n".join(out) + "\n"
    open(md_path, "w").write(md)
    doc = {
        "meta": meta,
        "targets": {
            t: {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in f.items()}
            for t, f in figures.items()
        },
        "ratios_switchyard_w1_over": ratios,
        "issue18": targets,
    }
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


# Issue 18's table: (figure, key, digits, bound): bound(sy, haproxy, nginx) -> (text, met)
def _rel(peer, factor):
    def bound(sy, ha, ng):
        ref = ha if peer == "haproxy" else ng
        if ref is None:
            return f"≤ {factor}× {peer}", None
        limit = factor * ref
        return f"≤ {factor}× {peer} ({limit:.2f})", sy <= limit
    return bound


def _abs(limit, text):
    def bound(sy, ha, ng):
        return text, sy <= limit
    return bound


ISSUE18 = [
    ("CPU µs per unary call at saturation", "cpu_us_per_call", 2, _rel("haproxy", 0.5)),
    ("CPU µs per unary call at a fixed rate", "rate_cpu_us_per_call", 2, _rel("haproxy", 0.5)),
    ("CPU µs per message, bidi at saturation", "bidi_cpu_us_per_msg", 2, _rel("haproxy", 0.7)),
    ("CPU µs per message, bidi paced", "bidi_paced_cpu_us_per_msg", 2, _rel("haproxy", 0.7)),
    ("CPU µs per message, new stream every few messages", "bidi_churn_cpu_us_per_msg", 2,
     _rel("haproxy", 0.7)),
    ("mean latency added at one call at a time, µs", "c1_added_us", 0, _rel("nginx", 0.5)),
    ("RSS per idle h2 connection, KiB", "idle_kib_per_conn", 2, _abs(4.0, "≤ 4")),
    ("peak RSS under load, MiB", "peak_rss_mib", 1, _abs(5.4, "keep (≤ 5.4)")),
]


def issue_targets(g):
    rows = []
    if g(SY, "cpu_us_per_call") is None:
        return rows
    for figure, key, digits, bound in ISSUE18:
        sy, ha, ng = (g(t, key) for t in (SY, "haproxy", "nginx"))
        med = [None if x is None else x["median"] for x in (sy, ha, ng)]
        if med[0] is None:
            continue
        text, met = bound(*med)
        rows.append({
            "figure": figure,
            "switchyard": fmt(sy, digits),
            "haproxy": fmt(ha, digits),
            "nginx": fmt(ng, digits),
            "target": text,
            "met": "—" if met is None else ("yes" if met else "no"),
        })
    return rows


def report_scaling(figures, scale, meta, md_path, json_path):
    def g(target, key):
        return figures.get(target, {}).get(key)

    out = [f"## switchyard scaling run, {meta.get('date', '')}", ""]
    out.append(f"{meta.get('cpu', '')}; Linux {meta.get('kernel', '')}; switchyard "
               f"{meta.get('switchyard', '')}, h2load {meta.get('h2load', '')}.")
    out.append(f"Parameters: {meta.get('params', '')}; workers {meta.get('scaling', '')}.")
    out.append("")
    out.append("Saturation (h2load, BENCH_CONNS x workers connections), switchyard pinned to as "
               "many CPUs as workers, the backend and h2load on the others. *Efficiency*: "
               "calls/s over (workers x the 1-worker calls/s).")
    out.append("")
    out.append("| workers | calls/s | p50 / p99 ms | CPU µs/call | proxy CPU % | h2load CPU % | "
               "efficiency |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    base = g(scale[0], "calls_per_s")
    n0 = int(scale[0][len("switchyard-scale"):])
    doc = {}
    for t in scale:
        n = int(t[len("switchyard-scale"):])
        cps = g(t, "calls_per_s")
        eff = "—"
        if base is not None and cps is not None and base["median"] > 0:
            eff = f"{cps['median'] / (base['median'] * n / n0):.2f}"
        out.append(f"| {n} | {fmt(cps, 0)} | {fmt(g(t, 'sat_p50_ms'), 2)} / "
                   f"{fmt(g(t, 'sat_p99_ms'), 2)} | {fmt(g(t, 'cpu_us_per_call'), 1)} | "
                   f"{fmt(g(t, 'proxy_cpu_pct'), 0)} | {fmt(g(t, 'loadgen_cpu_pct'), 0)} | {eff} |")
        doc[str(n)] = {k: {kk: round(vv, 3) for kk, vv in v.items()}
                       for k, v in figures[t].items()}
    out.append("")
    out.append("Needs more CPUs than the workers: with too few, h2load or the backend is the "
               "bottleneck and efficiency says nothing about switchyard.")
    open(md_path, "w").write("\n".join(out) + "\n")
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "workers": doc}, f, indent=2, sort_keys=True)
        f.write("\n")


def rusage(path, cmd):
    rc = subprocess.call(cmd)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(path, "w") as f:
        f.write(f"{ru.ru_utime + ru.ru_stime:.3f}\n")
    sys.exit(rc)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "rusage":
        rusage(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "h2load":
        h2load(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
