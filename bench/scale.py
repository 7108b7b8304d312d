"""Scale benchmark: thousands of workloads, one tick a minute (docs/scale.md).

    .venv/bin/python bench/scale.py [--sizes 10,100,1000] [--executors inline,local,dask]
                                    [--workers 2] [--model ebbtide|prophet] [--events none|sale]
                                    [--ticks 3] [--inline-max 10] [--json OUT.json]

For each size N and executor, in a fresh child process (so peak RSS is per case):
- N synthetic workloads (forecaster/synthetic.py, 90 days hourly; at most 50 distinct traces,
  reused with a per-workload scale factor), served by a fake Prometheus (StaticMetricsSource:
  demand and one quality SLI per workload) and a fake cluster (tests/controller_fakes.py), so
  the numbers measure Ebbtide, not I/O;
- full refit: Controller.refit_due over all N (cold: the first fit includes the trust
  bootstrap's extra fit), wall seconds;
- tick with cached models: median of --ticks Controller.tick(fit=False) one minute apart
  (checked: no fit job is submitted during the ticks);
- peak RSS of the controller process (ru_maxrss), and its RSS after building the fake data;
  bytes of forecast arrays in the cache;
- files and bytes left in the case's own $TMPDIR after the two full refits, workers still up
  (CmdStan's files: what would grow a controller's /tmp emptyDir with uptime).
Baselines in the same run: Prophet's own plain fit (PlainProphetForecaster, no intervals) and
one EbbtideForecaster fit, per series, sequential in one process (median of a few series); and
the `inline` executor (sequential fitting in the controller process) for sizes <= --inline-max.

`--model prophet` fits plain Prophet in every workload (no warm start: that model has no params),
i.e. the engine at Prophet's own speed; `--model ebbtide` (default) fits the product's model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

START = datetime(2026, 8, 1, tzinfo=timezone.utc)
DAYS = 90
STEP = timedelta(hours=1)
DISTINCT = 50


def plain_prophet_factory(workload, events):
    """Model factory: Prophet's own plain model (picklable: module level)."""
    from forecaster.model import PlainProphetForecaster

    q = workload.scaling.quantile
    return lambda: PlainProphetForecaster(upper_quantile=q, lower_quantile=1 - q, uncertainty_samples=0)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tmp_left() -> tuple[int, int]:
    """(files and folders, bytes of files) under this process's temp folder."""
    import tempfile

    entries = size = 0
    for root, dirs, files in os.walk(tempfile.gettempdir()):
        entries += len(dirs) + len(files)
        size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return entries, size


def _traces(n: int, events: str):
    from forecaster.synthetic import SaleSpec, generate

    sale = SaleSpec(day=DAYS - 30) if events == "sale" else None
    # One day more than the cold refit sees: the warm refit, a refit interval later, reads it.
    return [generate(START, DAYS + 1, STEP, seed=i, sale=sale, outages=1) for i in range(min(n, DISTINCT))]


def _policy_yaml(n: int, events_yaml: str) -> str:
    lines = ["apiVersion: ebbtide/v1", "dry_run: true", "schedule: {tick: 1m}",
             "prometheus: {url: 'http://prometheus.invalid:9090', max_staleness: 2h}"]
    if events_yaml:
        lines.append(events_yaml)
    lines.append("workloads:")
    for i in range(n):
        name = f"w{i:04d}"
        lines += [
            f"  - name: {name}",
            f"    target: {{kind: Deployment, namespace: live, name: {name}}}",
            f"    demand: {{query: 'sum(viewers{{workload=\"{name}\"}})', per_replica: 500}}",
            "    pod_startup: 60s",
            "    scaling: {min_replicas: 1, max_replicas: 400, headroom: 0.1}",
            "    forecast: {lookback: 90d, step: 1h, horizon: 6h, refit_interval: 6h, min_history: 7d, "
            "trust_bound: 0.35}",
            f"    quality: [{{name: rebuffering, query: 'rebuffer{{workload=\"{name}\"}}', threshold: 0.02}}]",
        ]
    return "\n".join(lines) + "\n"


def one_case(n: int, executor: str, workers: int, model: str, events: str, ticks: int) -> dict:
    """One (size, executor) case in this process; returns its figures."""
    import numpy as np
    import pandas as pd
    import yaml
    from controller_fakes import Clock, FakeCluster

    from forecaster.history import StaticMetricsSource
    from forecaster.series import Series
    from policies.loading import load_policy_text
    from scaler.controller import Controller
    from scaler.fitting import ParallelForecasterCache, make_executor

    t0 = time.perf_counter()
    traces = _traces(n, events)
    events_yaml = ""
    if events == "sale":
        evs = [e.model_dump(mode="json", exclude_none=True) for e in traces[0].events]
        events_yaml = yaml.safe_dump({"events": evs}, default_flow_style=False).rstrip()
    policy = load_policy_text(_policy_yaml(n, events_yaml))
    data = {}
    for i, w in enumerate(policy.workloads):
        base = traces[i % len(traces)].series
        scale = 1.0 + 0.01 * (i // len(traces))
        data[w.demand.query] = Series(base.values * scale, base.step, w.demand.query)
        sli = pd.Series(np.full(48, 0.005), index=base.index[-48:], name="value")
        data[w.quality[0].query] = Series(sli, base.step, w.quality[0].query)
    del traces
    source = StaticMetricsSource(data)
    # The newest sample the cold refit sees is day DAYS's last hour (demand now is seen); the
    # extra day is the future the warm refit reads.
    now = (START + timedelta(days=DAYS)).replace(tzinfo=timezone.utc)
    clock = Clock(now)
    cluster = FakeCluster({w.name: 10 for w in policy.workloads})
    factory = plain_prophet_factory if model == "prophet" else None
    ex = make_executor(executor, workers=workers)
    cache = ParallelForecasterCache(ex, factory, query_concurrency=8)
    controller = Controller(clock, source, cluster, cache, query_concurrency=8)
    setup_s = time.perf_counter() - t0
    rss_setup = _current_rss_mb()

    jobs_run = [0]
    inner_run = ex.run

    def counting_run(jobs, max_in_flight=None):
        for r in inner_run(jobs, max_in_flight):
            jobs_run[0] += 1
            yield r

    ex.run = counting_run  # type: ignore[method-assign]
    if executor != "inline":  # start the workers (and import Prophet there) outside the timing
        from scaler.fitting import quiet_worker

        t = time.perf_counter()
        if executor == "dask":
            ex._get_client().run(quiet_worker)
        else:
            pool = ex._get_pool()
            for f in [pool.submit(quiet_worker) for _ in range(ex.workers)]:
                f.result()
        warmup_s = time.perf_counter() - t
    else:
        warmup_s = 0.0
    t = time.perf_counter()
    outcomes = controller.refit_due(policy)
    refit_s = time.perf_counter() - t
    ok = sum(1 for o in outcomes if o.ok)
    trusted = sum(1 for o in outcomes if o.trusted)
    fit_s = [o.fit_s for o in outcomes if o.ok]
    jobs_before_ticks = jobs_run[0]
    tick_s = []
    planned = 0
    for _ in range(ticks):
        clock.advance(timedelta(minutes=1))
        report = controller.tick(policy, dry_run=True)
        tick_s.append(report.duration_s)
        planned = sum(1 for o in report.outcomes if o.plan is not None)
    fits_in_ticks = jobs_run[0] - jobs_before_ticks
    due_after = sum(1 for w in policy.workloads if cache.due(w, policy.events, clock.now()))
    # Warm full refit: one refit interval after the cold one every workload's staggered slot has
    # moved on once, so all N refit, each warm-started from its cached params (steady state).
    interval = policy.workloads[0].forecast.refit_interval
    clock.advance(now + interval - clock.now())
    due_warm = sum(1 for w in policy.workloads if cache.due(w, policy.events, clock.now()))
    t = time.perf_counter()
    warm_outcomes = controller.refit_due(policy)
    warm_refit_s = time.perf_counter() - t
    warm_fit_s = [o.fit_s for o in warm_outcomes if o.ok]
    cache_bytes = cache.nbytes()
    tmp_entries, tmp_bytes = _tmp_left()
    peak = _rss_mb()
    cache.close()
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "workloads": n, "executor": executor, "workers": ex.workers, "model": model, "events": events,
        "setup_s": round(setup_s, 1), "warmup_s": round(warmup_s, 1),
        "full_refit_s": round(refit_s, 1), "refit_ok": ok, "trusted": trusted,
        "refit_per_series_s": round(refit_s / max(n, 1), 3),
        "warm_due": due_warm, "warm_refit_s": round(warm_refit_s, 1),
        "warm_refit_ok": sum(1 for o in warm_outcomes if o.ok),
        "warm_refit_per_series_s": round(warm_refit_s / max(n, 1), 3),
        "median_warm_fit_s_in_worker": round(statistics.median(warm_fit_s), 2) if warm_fit_s else None,
        "median_fit_s_in_worker": round(statistics.median(fit_s), 2) if fit_s else None,
        "tick_s_median": round(statistics.median(tick_s), 2), "tick_s": [round(x, 2) for x in tick_s],
        "planned": planned, "fit_jobs_during_ticks": fits_in_ticks, "due_after_ticks": due_after,
        "cache_forecast_bytes": cache_bytes, "rss_after_setup_mb": round(rss_setup, 1),
        "peak_rss_mb": round(peak, 1), "worker_peak_rss_mb": round(children_peak, 1),
        "tmp_entries_left": tmp_entries, "tmp_kb_left": round(tmp_bytes / 1024),
    }


def baseline(sample: int, events: str) -> dict:
    """Prophet's own plain fit and one EbbtideForecaster fit per series, sequential, here."""
    from forecaster.model import EbbtideForecaster, ModelSettings, PlainProphetForecaster

    traces = _traces(sample, events)
    plain, ebb = [], []
    PlainProphetForecaster(uncertainty_samples=0).fit(traces[0].series)  # import + first-run cost
    for tr in traces[:sample]:
        t = time.perf_counter()
        PlainProphetForecaster(uncertainty_samples=0).fit(tr.series)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        EbbtideForecaster(tr.events, ModelSettings(lookback=timedelta(days=DAYS))).fit(tr.series)
        ebb.append(time.perf_counter() - t)
    return {"series": len(plain), "prophet_plain_fit_s_median": round(statistics.median(plain), 2),
            "ebbtide_fit_s_median": round(statistics.median(ebb), 2)}


def _child(args: list[str], timeout_s: float | None) -> dict:
    import tempfile

    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    with tempfile.TemporaryDirectory(prefix="ebbtide-scale-") as tmp:  # the case's own $TMPDIR
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
                                 env={**os.environ, "TMPDIR": tmp})
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout_s:.0f}s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:] if out.stderr else ''}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,100", help="workload counts, comma-separated (default 10,100)")
    p.add_argument("--executors", default="inline,local,dask", help="of inline,local,dask (default all)")
    p.add_argument("--workers", type=int, default=2, help="fit workers (processes) for local and dask (default 2)")
    p.add_argument("--model", choices=("ebbtide", "prophet"), default="ebbtide")
    p.add_argument("--events", choices=("none", "sale"), default="none",
                   help="a sale 30 days before now in every workload's history and the calendar")
    p.add_argument("--ticks", type=int, default=3, help="ticks timed per case (median quoted)")
    p.add_argument("--inline-max", type=int, default=10, help="largest size run with the inline executor")
    p.add_argument("--baseline-sample", type=int, default=5, help="series in the per-series baseline (0: skip)")
    p.add_argument("--case-timeout", type=float, default=None, help="seconds per case (default none)")
    p.add_argument("--json", metavar="OUT", help="also write all figures to OUT as JSON")
    p.add_argument("--one", nargs=2, metavar=("N", "EXECUTOR"), help=argparse.SUPPRESS)
    p.add_argument("--baseline-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(one_case(int(a.one[0]), a.one[1], a.workers, a.model, a.events, a.ticks)))
        return 0
    if a.baseline_only:
        print(json.dumps(baseline(a.baseline_sample, a.events)))
        return 0

    sizes = [int(s) for s in a.sizes.split(",") if s]
    executors = [e for e in a.executors.split(",") if e]
    common = ["--workers", str(a.workers), "--model", a.model, "--events", a.events, "--ticks", str(a.ticks)]
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
                     "settings": vars(a) | {"one": None}, "cases": []}
    if a.baseline_sample > 0:
        results["baseline"] = _child(["--baseline-only", "--baseline-sample", str(a.baseline_sample),
                                      "--events", a.events], a.case_timeout)
        print("baseline (sequential, one process, per series):", json.dumps(results["baseline"]), flush=True)
    for n in sizes:
        for ex in executors:
            if ex == "inline" and n > a.inline_max:
                continue
            r = _child(["--one", str(n), ex, *common], a.case_timeout)
            r.setdefault("workloads", n)
            r.setdefault("executor", ex)
            results["cases"].append(r)
            print(json.dumps(r), flush=True)
    print()
    print(f"{'N':>5} {'executor':<8} {'cold refit s':>12} {'s/series':>9} {'warm refit s':>12} {'s/series':>9} "
          f"{'tick s (med)':>12} {'peak RSS MB':>11} {'RSS data MB':>11} {'cache KB':>9} {'fits in ticks':>13} "
          f"{'tmp files':>9} {'tmp KB':>7}")
    for r in results["cases"]:
        if "error" in r:
            print(f"{r['workloads']:>5} {r['executor']:<8} {r['error']}")
            continue
        print(f"{r['workloads']:>5} {r['executor']:<8} {r['full_refit_s']:>12} {r['refit_per_series_s']:>9} "
              f"{r['warm_refit_s']:>12} {r['warm_refit_per_series_s']:>9} {r['tick_s_median']:>12} {r['peak_rss_mb']:>11} {r['rss_after_setup_mb']:>11} "
              f"{r['cache_forecast_bytes'] / 1024:>9.0f} {r['fit_jobs_during_ticks']:>13} "
              f"{r['tmp_entries_left']:>9} {r['tmp_kb_left']:>7}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
