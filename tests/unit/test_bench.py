"""kvmsentry bench: workload selection, the summary, tables, JSON and the profile, on synthetic numbers."""

import io
import json
import types

import pytest

from kvmsentry import cli
from kvmsentry.bench import PLATFORM_NAMES, WORKLOAD_NAMES, profile, report, workloads


def _runs(walls, figures=None, failures=()):
    return {"wall_s": list(walls), "cpu_s": [w / 2 for w in walls],
            "figures": figures or {}, "failures": list(failures)}


PROFILE = {
    "wall_s": 0.5, "exits": 4028, "syscall_total": 4020,
    "syscalls": {"write": 2001, "getpid": 2000, "brk": 19},
    "syscall_s": {"write": 0.008, "getpid": 0.002, "brk": 0.0001},
    "page_faults": 8, "other_exceptions": {}, "interrupts": 0, "other_exits": 0,
    "guest_s": 0.12, "sentry_s": 0.035,
}


def _results():
    return {
        "machine": {"node": "box", "cpus": 2, "kernel": "6.18", "kvm": "pvm", "cpu": "EPYC"},
        "date": "2026-11-29 12:00", "quick": True, "rounds": 3,
        "raw_exit_ns": 25000.0, "raw_exit_note": "",
        "platforms": {"native": {"status": "ok", "detail": ""},
                      "kvmsentry": {"status": "ok", "detail": ""},
                      "runsc-ptrace": {"status": "ok", "detail": ""},
                      "runsc-kvm": {"status": "hangs", "detail": "busybox true did not finish in 20 s"}},
        "workloads": {
            "syscall": {
                "description": "d", "size": "2000 getpid + 2000 write", "argv": ["x"], "note": "",
                "runs": {"native": _runs([0.002, 0.001, 0.003], {"getpid_ns": [100.0, 200.0, 150.0]}),
                         "kvmsentry": _runs([0.3, 0.2, 0.25], {"getpid_ns": [30000.0, 31000.0, 32000.0]}),
                         "runsc-ptrace": _runs([0.4, 0.5], {"getpid_ns": [45000.0, 44000.0]},
                                               failures=["status 1: boom"])},
                "profile": PROFILE,
            },
            "coldstart": {
                "description": "d", "size": "one process", "argv": ["x"], "note": "",
                "runs": {"native": _runs([0.001]), "kvmsentry": _runs([0.101]),
                         "runsc-ptrace": _runs([], failures=["timed out after 120 s"])},
                "profile": dict(PROFILE, exits=24),
            },
        },
    }


def test_workload_names_match_the_parser_list():
    assert tuple(workloads.WORKLOADS) == WORKLOAD_NAMES


def test_select_default_and_named():
    default = [w.name for w in workloads.select(None)]
    assert default == ["syscall", "coldstart", "sha256", "pagefault", "fork-exec", "pipe", "files"]
    assert [w.name for w in workloads.select(["pipe", "syscall", "pipe"])] == ["syscall", "pipe"]
    assert [w.name for w in workloads.select(["futex"])] == ["futex"]
    assert [w.name for w in workloads.select(["find", "files"])] == ["files", "find"]
    with pytest.raises(KeyError):
        workloads.select(["nope"])


def test_parser_accepts_bench_options_and_rejects_unknown_workloads():
    args = cli._parser().parse_args(["bench", "--quick", "-n", "2", "--workload", "syscall",
                                     "--workload", "pipe", "--platform", "native", "--json", "f.json"])
    assert (args.command, args.quick, args.n, args.workload, args.platform, args.json) == (
        "bench", True, 2, ["syscall", "pipe"], ["native"], "f.json")
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["bench", "--workload", "nope"])
    boot = cli._parser().parse_args(["boot", "--profile", "/bin/true"])
    assert boot.profile and boot.profile_json is None


def test_parse_figures():
    assert report.parse_figures("getpid_ns 30603.1\nwrite_ns 12\nnoise here\nx 1 2\n") == {
        "getpid_ns": 30603.1, "write_ns": 12.0}


def test_summary_medians_ratios_and_tax():
    summary = report.summarize(_results())
    ours = summary["syscall"]["platforms"]["kvmsentry"]
    assert ours["wall_s"] == {"median": 0.25, "min": 0.2, "max": 0.3, "n": 3}
    assert ours["ratio"] == pytest.approx(0.25 / 0.002)
    assert ours["figure_ratios"]["getpid_ns"] == pytest.approx(31000 / 150)
    assert summary["syscall"]["platforms"]["runsc-ptrace"]["failures"] == 1
    assert summary["coldstart"]["platforms"]["runsc-ptrace"]["wall_s"] is None
    assert summary["coldstart"]["platforms"]["runsc-ptrace"]["ratio"] is None
    tax = summary["syscall"]["tax"]
    assert tax["exits"] == 4028
    assert tax["predicted_overhead_s"] == pytest.approx(4028 * 25000 / 1e9)
    assert tax["measured_overhead_s"] == pytest.approx(0.25 - 0.002)
    assert tax["beyond_startup_s"] == pytest.approx((0.25 - 0.002) - (0.101 - 0.001))
    assert summary["coldstart"]["tax"]["beyond_startup_s"] is None


def test_summary_without_native_or_profile():
    results = _results()
    del results["workloads"]["syscall"]["runs"]["native"]
    results["workloads"]["syscall"]["profile"] = None
    summary = report.summarize(results)
    assert summary["syscall"]["platforms"]["kvmsentry"]["ratio"] is None
    assert summary["syscall"]["tax"] is None


def test_tables_and_markdown():
    results = _results()
    tables = report.tables(results)
    titles = [t[0] for t in tables]
    assert titles[0].startswith("Wall time") and titles[1].startswith("The guests' own")
    assert titles[2].startswith("The tax explained") and "25,000 ns" in titles[2]
    title, header, rows = tables[0]
    assert header == ["workload", "size", "native", "kvmsentry", "runsc-ptrace"]
    assert rows[0][0] == "syscall" and rows[0][3].startswith("125x\n250.0 ms")
    assert rows[1][4] == "failed: timed out after 120 s"
    for _, header, rows in tables:
        assert all(len(row) == len(header) for row in rows)
    text = report.markdown(results)
    assert "| syscall | 2000 getpid + 2000 write | 2.0 ms (1.0 ms-3.0 ms) | 125x 250.0 ms" in text
    assert "runsc-kvm: hangs (busybox true did not finish in 20 s)" in text
    assert "raw C exit round trip (guests/raw_exit.c): 25,000 ns" in text
    assert "write 2,001, getpid 2,000, brk 19" in text


def test_rich_table_renders():
    rich = pytest.importorskip("rich.console")
    console = rich.Console(file=io.StringIO(), width=200, color_system=None)
    report.print_rich(_results(), console)
    out = console.file.getvalue()
    assert "Wall time: ratio to native" in out and "125x" in out and "runsc-kvm: hangs" in out


def test_json_has_samples_and_summary():
    data = json.loads(report.to_json(_results()))
    assert data["workloads"]["syscall"]["runs"]["kvmsentry"]["wall_s"] == [0.3, 0.2, 0.25]
    assert data["summary"]["syscall"]["platforms"]["native"]["ratio"] == pytest.approx(1.0)
    assert data["platforms"]["runsc-kvm"]["status"] == "hangs"


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    report.plot(_results(), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_format_helpers():
    assert report.fmt_seconds(None) == "-"
    assert report.fmt_seconds(0.0000123) == "12 µs"
    assert report.fmt_seconds(0.0123) == "12.3 ms"
    assert report.fmt_seconds(12.345) == "12.35 s"
    assert report.fmt_ratio(1.234) == "1.23x" and report.fmt_ratio(123.4) == "123x"
    assert report.fmt_ratio(None) == "-"


def test_platform_order():
    assert PLATFORM_NAMES[:2] == ("native", "kvmsentry")


def test_make_tree(tmp_path):
    total = workloads.make_tree(str(tmp_path), 45)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 45
    assert sum(p.stat().st_size for p in files) == total


def test_profile_counts_wrapped_calls():
    """The wrappers count syscalls by name, faults by vector, traps by kind."""
    prof = profile.Profile()
    regs = types.SimpleNamespace(rax=39)  # getpid
    task = types.SimpleNamespace(context=types.SimpleNamespace(regs=regs, fault=None))
    syscall = prof.wrap_syscall(lambda t: None)
    for _ in range(3):
        syscall(task)
    regs.rax = 1  # write
    syscall(task)
    task.context.fault = types.SimpleNamespace(vector=14)
    fault = prof.wrap_fault(lambda t: None, {14: "#PF page fault", 6: "#UD invalid opcode"})
    fault(task)
    fault(task)
    task.context.fault = types.SimpleNamespace(vector=6)
    fault(task)
    kinds = iter([0, 0, 0, 0, 1, 1, 1, 2])
    vcpu_run = prof.wrap_vcpu_run(lambda vcpu: None)
    context_run = prof.wrap_context_run(lambda ctx: (vcpu_run(None), next(kinds))[1],
                                        {0: "syscall", 1: "fault", 2: "interrupt"})
    for _ in range(8):
        context_run(None)
    data = prof.as_dict()
    assert data["syscalls"] == {"getpid": 3, "write": 1}
    assert data["syscall_total"] == 4
    assert data["page_faults"] == 2
    assert data["other_exceptions"] == {"#UD invalid opcode": 1}
    assert data["exits"] == 8 and data["interrupts"] == 1 and data["other_exits"] == 0
    text = profile.format_profile(data)
    assert "8 exits" in text and "getpid" in text and "#UD invalid opcode 1" in text


def test_profiler_report_writes_json(tmp_path):
    prof = profile.Profile()
    path = tmp_path / "p.json"
    stream = io.StringIO()
    profile.Profiler(prof).report(stream, str(path))
    assert "kvmsentry profile: 0 exits" in stream.getvalue()
    assert json.loads(path.read_text())["exits"] == 0


def test_count_regular_files_is_find_type_f(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("x")
    (tmp_path / "b").write_text("y")
    (tmp_path / "link").symlink_to("b")
    (tmp_path / "dirlink").symlink_to("d")
    assert workloads.count_regular_files(str(tmp_path)) == 2
