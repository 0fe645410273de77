"""The bench report: medians and ratios, as tables (rich, Markdown), JSON and a PNG chart.

Everything here is pure data in, text or a file out: it works on the dict
``runner.run_bench`` returns, so it is tested with synthetic numbers.
``summarize`` adds the figures the tables show; ``tables`` lays them out
once for both renderers. Ratios are to the native run of the same bench
run; a ratio is None where either side has no successful sample.
"""

from __future__ import annotations

import json
import re
import statistics

from kvmsentry.bench import PLATFORM_NAMES


def parse_figures(output: str) -> dict[str, float]:
    """The ``name value`` lines a benchmark guest prints (``getpid_ns 30603.1``)."""
    return {k: float(v) for k, v in re.findall(r"^(\w+) (-?[\d.]+)$", output, re.M)}


def stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _ratio(a: dict | None, b: dict | None) -> float | None:
    if a is None or b is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def summarize(results: dict) -> dict:
    """Per workload and platform: wall/cpu/figure stats, ratios to native, the tax.

    Returns ``{workload: {"platforms": {p: {"wall_s", "cpu_s", "figures",
    "ratio", "figure_ratios", "failures"}}, "tax": {...} | None}}``. The tax
    (kvmsentry only) is the profile's exits, the predicted overhead
    (exits x the raw C exit cost) and the measured one (kvmsentry's median
    wall time minus native's), and the measured one beyond start-up (minus
    coldstart's measured overhead, when coldstart ran), all in seconds.
    """
    summary = {}
    raw_ns = results.get("raw_exit_ns")
    for name, w in results["workloads"].items():
        plats = {}
        for plat, runs in w["runs"].items():
            plats[plat] = {
                "wall_s": stats(runs["wall_s"]),
                "cpu_s": stats(runs.get("cpu_s", [])),
                "figures": {k: stats(v) for k, v in runs.get("figures", {}).items()},
                "failures": len(runs.get("failures", [])),
            }
        native = plats.get("native")
        for plat, s in plats.items():
            s["ratio"] = _ratio(s["wall_s"], native["wall_s"]) if native else None
            s["figure_ratios"] = {k: _ratio(v, native["figures"].get(k)) if native else None
                                  for k, v in s["figures"].items()}
        tax = None
        profile = w.get("profile")
        if profile and "exits" in profile:
            ours = plats.get("kvmsentry", {}).get("wall_s")
            tax = {
                "exits": profile["exits"],
                "predicted_overhead_s": profile["exits"] * raw_ns / 1e9 if raw_ns else None,
                "measured_overhead_s": (ours["median"] - native["wall_s"]["median"]
                                        if ours and native and native["wall_s"] else None),
            }
        summary[name] = {"platforms": plats, "tax": tax}
    # What every kvmsentry run pays before the program's first instruction
    # (Python, imports, the VM): coldstart's overhead over native.
    startup = (summary.get("coldstart") or {}).get("tax") or {}
    startup_s = startup.get("measured_overhead_s")
    for name, s in summary.items():
        tax = s["tax"]
        if tax is not None:
            measured = tax["measured_overhead_s"]
            known = measured is not None and startup_s is not None and name != "coldstart"
            tax["beyond_startup_s"] = measured - startup_s if known else None
    return summary


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if abs(s) < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if abs(s) < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def fmt_number(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def _platforms(results: dict) -> list[str]:
    """The platforms that ran something, in PLATFORM_NAMES order."""
    seen = {p for w in results["workloads"].values() for p in w["runs"]}
    return [p for p in PLATFORM_NAMES if p in seen]


def tables(results: dict, summary: dict | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables; a cell may hold a newline."""
    summary = summary if summary is not None else summarize(results)
    plats = _platforms(results)
    out = []

    header = ["workload", "size"] + plats
    rows = []
    for name, w in results["workloads"].items():
        row = [name, w.get("size") or w.get("note", "")]
        for plat in plats:
            s = summary[name]["platforms"].get(plat)
            if s is None or s["wall_s"] is None:
                failures = results["workloads"][name]["runs"].get(plat, {}).get("failures", [])
                row.append(("failed: " + failures[0]) if failures else "-")
                continue
            wall = s["wall_s"]
            spread = (f"{fmt_seconds(wall['median'])} "
                      f"({fmt_seconds(wall['min'])}-{fmt_seconds(wall['max'])})")
            row.append(spread if plat == "native" else f"{fmt_ratio(s['ratio'])}\n{spread}")
        rows.append(row)
    out.append(("Wall time: ratio to native, median (min-max)", header, rows))

    rows = []
    for name in results["workloads"]:
        figures = sorted({k for s in summary[name]["platforms"].values() for k in s["figures"]})
        for key in figures:
            row = [name, key]
            for plat in plats:
                s = summary[name]["platforms"].get(plat)
                f = s["figures"].get(key) if s else None
                if f is None:
                    row.append("-")
                elif plat == "native":
                    row.append(fmt_number(f["median"]))
                else:
                    row.append(f"{fmt_number(f['median'])} ({fmt_ratio(s['figure_ratios'].get(key))})")
            rows.append(row)
    if rows:
        out.append(("The guests' own figures, median (ratio to native)",
                    ["workload", "figure"] + plats, rows))

    rows = []
    raw_ns = results.get("raw_exit_ns")
    for name, w in results["workloads"].items():
        profile = w.get("profile")
        if not profile:
            continue
        if "exits" not in profile:
            rows.append([name, profile.get("error", "no profile")] + [""] * 8)
            continue
        tax = summary[name]["tax"]
        top = ", ".join(f"{k} {v:,}" for k, v in list(profile["syscalls"].items())[:3])
        other = sum(profile["other_exceptions"].values()) + profile.get("other_exits", 0)
        rows.append([name, f"{profile['exits']:,}", f"{profile['syscall_total']:,}\n{top}",
                     f"{profile['page_faults']:,}", f"{profile['interrupts']:,}", f"{other:,}",
                     f"{fmt_seconds(profile['guest_s'])} / {fmt_seconds(profile['sentry_s'])}",
                     fmt_seconds(tax["predicted_overhead_s"]), fmt_seconds(tax["measured_overhead_s"]),
                     fmt_seconds(tax["beyond_startup_s"])])
    if rows:
        raw = f"{raw_ns:,.0f} ns" if raw_ns else "unmeasured"
        out.append((f"The tax explained: kvmsentry's exits in one --profile run; predicted = "
                    f"exits x raw C exit ({raw}), measured = kvmsentry - native, beyond start-up = "
                    f"measured - coldstart's measured",
                    ["workload", "exits", "syscalls", "page faults", "interrupts", "other",
                     "guest / sentry", "predicted", "measured", "beyond start-up"], rows))
    return out


def notes(results: dict) -> list[str]:
    """The lines under the tables: machine, platforms that did not run, the raw exit."""
    m = results.get("machine", {})
    lines = [f"{results.get('date', '')} on {m.get('node', '?')}: {m.get('cpu', 'cpu ?')}, "
             f"{m.get('cpus', '?')} cpus, Linux {m.get('kernel', '?')}, /dev/kvm: {m.get('kvm', '?')}; "
             f"{results.get('rounds')} rounds, interleaved"
             f"{' (--quick sizes)' if results.get('quick') else ''}"]
    for name, p in results.get("platforms", {}).items():
        if p["status"] != "ok":
            lines.append(f"{name}: {p['status']} ({p['detail']})")
    if results.get("raw_exit_ns"):
        lines.append(f"raw C exit round trip (guests/raw_exit.c): {results['raw_exit_ns']:,.0f} ns")
    elif results.get("raw_exit_note"):
        lines.append(f"raw C exit round trip: {results['raw_exit_note']}")
    if results.get("raw_ring_ns"):
        lines.append(f"raw C ring round trip (guests/raw_ring.c): {results['raw_ring_ns']:,.0f} ns")
    elif results.get("raw_ring_note"):
        lines.append(f"raw C ring round trip: {results['raw_ring_note']}")
    return lines


def markdown(results: dict, summary: dict | None = None) -> str:
    """The report as Markdown tables (for BENCHMARKS.md)."""
    parts = []
    for title, header, rows in tables(results, summary):
        parts.append(f"**{title}**\n")
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * len(header))
        for row in rows:
            parts.append("| " + " | ".join(c.replace("\n", " ").replace("|", "\\|") for c in row) + " |")
        parts.append("")
    parts.extend(f"- {line}" for line in notes(results))
    return "\n".join(parts) + "\n"


def print_rich(results: dict, console, summary: dict | None = None) -> None:
    """The report as rich tables on ``console``."""
    from rich.table import Table

    for title, header, rows in tables(results, summary):
        table = Table(title=title, title_justify="left", show_lines=True)
        for i, column in enumerate(header):
            left = i == 0 or column in ("size", "figure", "syscalls")
            table.add_column(column, justify="left" if left else "right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in notes(results):
        console.print(line, highlight=False)


def to_json(results: dict, summary: dict | None = None) -> str:
    """The samples and the summary as JSON text."""
    data = dict(results)
    data["summary"] = summary if summary is not None else summarize(results)
    return json.dumps(data, indent=1)


def plot(results: dict, path: str, summary: dict | None = None) -> None:
    """A PNG bar chart of ratio-to-native per workload and platform (log scale).

    Raises ImportError with the install hint when matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'kvmsentry[bench]' "
                          "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summary if summary is not None else summarize(results)
    plats = [p for p in _platforms(results) if p != "native"]
    names = list(results["workloads"])
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, len(names) * (0.8 + 0.4 * len(plats)))), 4.5))
    width = 0.8 / max(1, len(plats))
    for i, plat in enumerate(plats):
        xs, ys = [], []
        for j, name in enumerate(names):
            s = summary[name]["platforms"].get(plat)
            if s and s["ratio"]:
                xs.append(j + (i - (len(plats) - 1) / 2) * width)
                ys.append(s["ratio"])
        bars = ax.bar(xs, ys, width, label=plat)
        for bar, y in zip(bars, ys):
            ax.annotate(fmt_ratio(y), (bar.get_x() + bar.get_width() / 2, y), ha="center",
                        va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("wall time / native (log scale)")
    m = results.get("machine", {})
    ax.set_title(f"kvmsentry bench, {results.get('date', '')}, {m.get('node', '')} "
                 f"({m.get('cpus', '?')} cpus, kvm: {m.get('kvm', '?')})", fontsize=9)
    if plats:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
