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


def write_performance_doc(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Performance",
        "",
        "Measured with `make bench` (`bench/run.py`); every figure in the tables below comes from",
        "[`performance-results.json`](performance-results.json), that run's output (`--write-docs`",
        "writes both). Re-run it after changing the batch path.",
        "",
        "## Machine",
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
        "Where a run was repeated, Zenith's figure is the median and the spread is every run's.",
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
                  f"max {load['max_ms']} ms, {load['errors']} errors."]
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
