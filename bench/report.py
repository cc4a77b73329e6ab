"""Turns bench/out/results.json into docs/performance.md (`bench/run.py --write-docs`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _label(run: dict) -> str:
    z = run["zenith"]
    return (z["via"] + (" + throttle" if run.get("throttle_active") else "")
            + (" + status load" if run.get("status_load") else "")
            + (" (2,000 batches)" if run.get("many_batches") else ""))


def _plain(run: dict) -> bool:
    return run["zenith"]["via"] == "http" and not any(run.get(k) for k in ("throttle_active", "status_load",
                                                                            "many_batches"))


def _scaling(results: dict) -> list[str]:
    """Each worker count against one worker on the smallest size: the ratio of the medians,
    and of each interleaved repeat against the one-worker run next to it."""
    size = min(run["size"] for run in results["runs"])
    by_workers = {run["zenith"]["workers"]: run["zenith"] for run in results["runs"]
                  if run["size"] == size and _plain(run)}
    one = by_workers.get(1)
    if not one or len(by_workers) < 2:
        return []
    lines = ["", f"## Scaling on {size:,} items", "",
             "Repeats ran interleaved (1, 2, 4 workers, then again), so each repeat's ratio compares runs",
             "made next to each other.", "",
             _row(["workers", "median items/s", "median / 1 worker", "each repeat / its 1-worker run"]),
             _row(["---"] * 4)]
    base = one.get("repeats_items_per_second") or [one["items_per_second"]]
    for workers, z in sorted(by_workers.items()):
        repeats = z.get("repeats_items_per_second") or [z["items_per_second"]]
        pairs = [f"{r / b:.2f}" for r, b in zip(repeats, base, strict=False)]
        ratio = z["items_per_second"] / one["items_per_second"]
        lines.append(_row([workers, f"{z['items_per_second']:,}", f"{ratio:.2f}", ", ".join(pairs)]))
    return lines


def _targets(results: dict) -> list[str]:
    """The issue's targets against this run's figures."""
    runs = results["runs"]
    large, small = max(r["size"] for r in runs), min(r["size"] for r in runs)
    rows = []

    def plain(size: int, workers: int) -> dict | None:
        return next((r for r in runs if r["size"] == size and r["zenith"]["workers"] == workers and _plain(r)), None)

    two = plain(large, 2)
    if two:
        ref2 = two["reference"].get("2") or two["reference"].get(2)
        ratio = two["zenith"]["items_per_second"] / ref2["items_per_second"]
        pairs = two["zenith"].get("pair_ratios_to_2p_reference") or []
        how = (f" (medians of {len(pairs)} interleaved pairs; each pair: {', '.join(f'{p:.2f}' for p in pairs)})"
               if len(pairs) > 1 else "")
        rows.append([f"{large:,} end to end >= 0.70x the 2-process reference",
                     f"{two['zenith']['items_per_second']:,} vs {ref2['items_per_second']:,} items/s: "
                     f"{ratio:.2f}x{how}",
                     ratio >= 0.7])
    one_small, two_small = plain(small, 1), plain(small, 2)
    if one_small and two_small:
        ratio = two_small["zenith"]["items_per_second"] / one_small["zenith"]["items_per_second"]
        rows.append([f"2 workers >= 1.7x one worker on {small:,}", f"{ratio:.2f}x (medians)", ratio >= 1.7])
    loads = [r["zenith"]["status_load"] for r in runs if r["zenith"].get("status_load")]
    if loads:
        repeats = loads[0].get("repeats_p99_ms") or []
        how = f" (median of {len(repeats)} runs: {', '.join(map(str, repeats))} ms)" if len(repeats) > 1 else ""
        rows.append(["status endpoint p99 < 20 ms at 200 requests/s", f"{loads[0]['p99_ms']} ms{how}",
                     loads[0]["p99_ms"] < 20])
    at_large = [r["zenith"] for r in runs if r["size"] == large]
    if at_large:
        redis_peak = max(z["redis_peak_mb"] for z in at_large)
        web_peak = max(z["web_peak_rss_mb"] for z in at_large)
        growth = max(z["worker_rss_growth_mb"] for z in at_large)
        rows += [[f"peak Redis memory < 50 MB ({large:,} items)", f"{redis_peak} MB", redis_peak < 50],
                 [f"web RSS < 300 MB receiving the {large:,}-row upload", f"{web_peak} MB", web_peak < 300],
                 ["worker RSS flat across the job", f"grew at most {growth} MB", growth < 50]]
    many = [r["zenith"] for r in runs if r.get("many_batches")]
    if many:
        rows.append([f"finalization < 1 s after the last of {many[0]['batches']:,} batches",
                     f"{many[0]['finalize_lag_ms']} ms", many[0]["finalize_lag_ms"] < 1000])
    if not rows:
        return []
    return ["", "## Targets", "", _row(["target", "this run", "met"]), _row(["---"] * 3),
            *[_row([name, figure, "yes" if met else "**no**"]) for name, figure, met in rows]]


def write_performance_doc(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Performance",
        "",
        "The first section is `make bench` (`bench/yardsticks.py`): Zenith against yardsticks written",
        "outside it. The engine's own tables after it are `make bench-engine` (`bench/run.py`); their",
        "figures come from [`performance-results.json`](performance-results.json), that run's output",
        "(`--write-docs` writes both). Re-run both after changing the batch path.",
        "",
    ]
    first = Path(__file__).with_name("notes-first.md")
    if first.exists():
        lines += [first.read_text().rstrip(), ""]
    lines += [
        "## Machine (the engine's tables)",
        "",
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB RAM; PostgreSQL {m['postgresql']} and Redis "
        f"{m['redis']} on the same machine; Python {m['python']}, Django {m['django']}; {m['date']}.",
        "",
        "## End to end against the no-queue reference",
        "",
        "The reference calls the same validation and persistence code (the transaction handler's",
        "`validate` and `persist`, batches of 500, one transaction each) directly over the same",
        "file, in 1 and in 2 processes. Zenith's figure is end to end: upload over HTTP to a real",
        "gunicorn (or `manage.py submit_job`), batching, workers, finalizer.",
        "",
        "Where a run was repeated, Zenith's figure is the median and the spread is every run's. At the",
        "larger size each 2-worker run follows a 2-process reference run of its own (interleaved pairs);",
        "the reference figure there is the median of those runs.",
        "",
        _row(["items", "path", "workers", "Zenith items/s", "spread", "ref 1p items/s", "ref 2p items/s",
              "Zenith / ref 2p", "submit s", "finalize lag ms", "batches x size", "window"]),
        _row(["---"] * 12),
    ]
    for run in results["runs"]:
        z, ref = run["zenith"], run["reference"]
        ref1 = ref.get("1") or ref.get(1)
        ref2 = ref.get("2") or ref.get(2)
        repeats = z.get("repeats_items_per_second") or []
        spread = f"{min(repeats):,}-{max(repeats):,}" if len(repeats) > 1 else ""
        lines.append(_row([
            f"{z['items']:,}", _label(run), z["workers"], f"{z['items_per_second']:,}", spread,
            f"{ref1['items_per_second']:,}",
            f"{ref2['items_per_second']:,}", f"{z['items_per_second'] / ref2['items_per_second']:.2f}",
            z["submit_seconds"], z["finalize_lag_ms"], f"{z['batches']} x {z['batch_size']}", z["window"],
        ]))
    lines += _scaling(results) + _targets(results)
    lines += [
        "",
        "## Memory",
        "",
        "Worker RSS is listed for every process of the pool (its parent and RQ-scheduler child",
        "included); growth is the largest of any process from its first sample to its peak.",
        "",
        _row(["items", "path", "workers", "web peak RSS MB", "pool processes' peak RSS MB", "worker RSS growth MB",
              "Redis peak MB", "Redis growth MB", "rows in PostgreSQL", "accounting identity"]),
        _row(["---"] * 10),
    ]
    for run in results["runs"]:
        z = run["zenith"]
        each = z.get("worker_peak_rss_mb_each") or [z["worker_peak_rss_mb"]]
        lines.append(_row([f"{z['items']:,}", _label(run), z["workers"], z["web_peak_rss_mb"],
                           ", ".join(map(str, each)),
                           z["worker_rss_growth_mb"], z["redis_peak_mb"], z["redis_growth_mb"],
                           f"{z['rows_in_postgres']:,}", "holds" if z["accounting_identity"] else "BROKEN"]))
    loads = [run["zenith"]["status_load"] for run in results["runs"] if run["zenith"].get("status_load")]
    if loads:
        load = loads[0]
        lines += ["", "## Status endpoint under load", "",
                  f"`GET /api/v1/batch-jobs/{{id}}` at a fixed {load['target_rps']} requests/s for "
                  f"{load['requests'] / max(load['achieved_rps'], 1):.0f} s while a job ran: achieved "
                  f"{load['achieved_rps']} requests/s, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, "
                  f"max {load['max_ms']} ms, {load['errors']} errors."
                  + (f" That is the run with the median p99 of {len(load['repeats_p99_ms'])}: "
                     f"{', '.join(map(str, load['repeats_p99_ms']))} ms." if len(load.get("repeats_p99_ms") or []) > 1
                     else "")]
    profiles = [(z, z["profile"]) for z in results.get("profiles", []) if z.get("profile")]
    if profiles:
        lines += ["", "## Profiles", "",
                  "From runs of their own (a profiler slows what it samples; no figure above was taken under "
                  "one): py-spy sampled the running threads (200 Hz, not idle ones) of the process tree for "
                  f"{profiles[0][1]['seconds']} s; each sample is charged to the deepest frame on its stack that "
                  "belongs to one of these stages (raw stacks in `bench/out/`).", ""]
        for z, profile in profiles:
            who = "worker pool" if profile["kind"] == "workers" else "web (gunicorn, during the status load)"
            lines += [f"**{who}**, {z['items']:,} items, {z['workers']} workers, {profile['samples']:,} samples:", "",
                      _row(["stage", "% of samples"]), _row(["---", "---"])]
            lines += [_row([stage, share]) for stage, share in profile["stage_percent"].items()]
            lines.append("")
    throttles = [run["zenith"]["throttle"] for run in results["runs"] if run["zenith"].get("throttle")]
    if throttles:
        lines += ["", "## Throttle cost", "",
                  f"One throttle decision (the Lua GCRA over batches and items) costs "
                  f"{throttles[0]['microseconds_per_call']} µs ({throttles[0]['calls']:,} calls); the throttled "
                  "run above had a limit far above its rate, so its difference to the unthrottled run is that cost "
                  "plus noise."]
    notes = Path(__file__).with_name("notes.md")
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "out" / "results.json"
    write_performance_doc(json.loads(source.read_text()), Path(__file__).resolve().parent.parent / "docs" /
                          "performance.md")
