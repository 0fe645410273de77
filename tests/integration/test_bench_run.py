"""`kvmsentry bench` and `kvmsentry boot --profile` end to end (shapes only: no time is asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
TIMEOUT = 300  # a guard against a hung run, never a performance assertion


def _kvmsentry(*args, cwd=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "kvmsentry", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.requires_kvm
def test_bench_quick_syscall_json(tmp_path):
    out = tmp_path / "bench.json"
    done = _kvmsentry("bench", "--quick", "--workload", "syscall", "-n", "1", "--json", str(out),
                      "--platform", "native", "--platform", "kvmsentry", "--platform", "runsc-ptrace",
                      "--markdown")
    assert done.returncode == 0, done.stderr
    assert "| syscall |" in done.stdout
    data = json.loads(out.read_text())
    assert set(data) >= {"machine", "date", "quick", "rounds", "raw_exit_ns", "platforms",
                         "workloads", "summary"}
    assert data["quick"] is True and data["rounds"] == 1
    assert list(data["workloads"]) == ["syscall"]
    assert data["platforms"]["native"]["status"] == "ok"
    assert data["platforms"]["kvmsentry"]["status"] == "ok"
    assert data["platforms"]["runsc-ptrace"]["status"] in ("ok", "absent", "fails", "hangs")
    assert data["raw_exit_ns"] > 0
    runs = data["workloads"]["syscall"]["runs"]
    for platform in ("native", "kvmsentry"):
        assert runs[platform]["failures"] == []
        assert len(runs[platform]["wall_s"]) == 1
        assert set(runs[platform]["figures"]) == {"getpid_ns", "write_ns"}
    summary = data["summary"]["syscall"]
    assert summary["platforms"]["kvmsentry"]["ratio"] > 0
    assert summary["platforms"]["native"]["ratio"] == pytest.approx(1.0)
    profile = data["workloads"]["syscall"]["profile"]
    # getpid is answered in the guest (no exit); every write exits.
    assert profile["syscalls"].get("getpid", 0) == 0 and profile["syscalls"]["write"] >= 2000
    assert profile["exits"] >= profile["syscall_total"] + profile["page_faults"]
    assert summary["tax"]["exits"] == profile["exits"]


@pytest.mark.requires_kvm
def test_boot_profile(tmp_path):
    out = tmp_path / "profile.json"
    done = _kvmsentry("boot", "--profile-json", str(out), "/bin/busybox", "sh", "-c",
                      "/bin/busybox true; echo done")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert "kvmsentry profile:" in done.stderr and "page faults" in done.stderr
    data = json.loads(out.read_text())
    assert data["syscalls"]["execve"] == 1 and data["syscalls"]["exit_group"] == 2
    assert data["exits"] == (data["syscall_total"] + data["page_faults"] + data["interrupts"]
                             + sum(data["other_exceptions"].values()) + data["other_exits"])
    assert data["guest_s"] > 0


@pytest.mark.requires_kvm
def test_bench_quick_ring_platform_and_raw_ring(tmp_path):
    """kvmsentry-ring runs the syscall workload; the raw C ring round trip is measured."""
    out = tmp_path / "bench.json"
    done = _kvmsentry("bench", "--quick", "--workload", "syscall", "-n", "1", "--json", str(out),
                      "--platform", "native", "--platform", "kvmsentry-ring", "--no-profile", "--markdown")
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["platforms"]["kvmsentry-ring"]["status"] == "ok"
    assert "--syscall-path=ring" in data["platforms"]["kvmsentry-ring"]["command"]
    runs = data["workloads"]["syscall"]["runs"]["kvmsentry-ring"]
    assert runs["failures"] == [] and set(runs["figures"]) == {"getpid_ns", "write_ns"}
    assert data["raw_ring_ns"] > 0, data["raw_ring_note"]
    assert "raw C ring round trip (guests/raw_ring.c)" in done.stdout
