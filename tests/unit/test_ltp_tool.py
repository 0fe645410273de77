"""tools/ltp.py: reading LTP's output (new and old API) and the test list, without LTP."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def ltp():
    spec = importlib.util.spec_from_file_location("ltp_tool", os.path.join(ROOT, "tools", "ltp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NEW_API = """tst_test.c:1876: TINFO: Overall timeout per run is 0h 00m 30s
open01.c:56: TPASS: sticky bit is set as expected
open01.c:56: TFAIL: directory bit is not set

Summary:
passed   1
failed   1
broken   0
skipped  0
warnings 0
"""

OLD_API = """fcntl11     0  TINFO  :  Enter block 1
fcntl11     1  TFAIL  :  fcntl11.c:168: region length is wrong
fcntl11     2  TPASS  :  Block 2 PASSED
fcntl11     3  TCONF  :  fcntl11.c:20: no leases here
"""


def test_new_api_summary(ltp):
    r = ltp.Result(NEW_API, 1, 0.1)
    assert r.counts == {"passed": 1, "failed": 1, "broken": 0, "skipped": 0}
    assert r.verdict == "FAIL"
    assert r.cell() == "FAIL 1p/1f/0b/0c (exit 1)"


def test_old_api_lines_and_verdicts(ltp):
    r = ltp.Result(OLD_API, 0, 0.1)
    assert r.counts == {"passed": 1, "failed": 1, "broken": 0, "skipped": 1}
    assert r.verdict == "PASS"
    assert ltp.Result("", 32, 0).verdict == "CONF"
    assert ltp.Result("", 36, 0).verdict == "FAIL"        # TCONF | TWARN
    assert ltp.Result("", None, 0).verdict == "TIMEOUT"
    assert "timeout" in ltp.Result("", None, 0).cell()


def test_tests_of_takes_runtest_entries_built_in_the_families(ltp, tmp_path):
    src = tmp_path / "ltp"
    (src / "runtest").mkdir(parents=True)
    (src / "runtest" / "syscalls").write_text(
        "#DESCRIPTION:syscalls\n"
        "open01 open01\n"
        "open12 open12\n"
        "dup01 dup01\n"
        "dup201 dup201\n"            # another directory (dup2): not built here
        "mmap01 mmap01\n")
    for family, names in {"open": ["open01", "open12", "open12_child"], "dup": ["dup01"]}.items():
        d = src / "testcases" / "kernel" / "syscalls" / family
        d.mkdir(parents=True)
        (d / f"{family}01.c").write_text("")
        for name in names:
            (d / name).write_text("#!/bin/sh\n")
            (d / name).chmod(0o755)
    tests = ltp.tests_of(str(src), ["open", "dup"])
    assert tests == [("open", "open01", ["open01"]), ("open", "open12", ["open12"]),
                     ("dup", "dup01", ["dup01"])]
