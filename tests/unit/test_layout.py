"""guest/runtime.S repeats offsets and ports of kvmsentry/platform/layout.py: they must agree."""

import re
from pathlib import Path

import pytest

from kvmsentry.platform import layout

RUNTIME_S = Path(__file__).resolve().parents[2] / "guest" / "runtime.S"


def _defines():
    """{name: int} for every `#define NAME <number>` in runtime.S."""
    values = {}
    for line in RUNTIME_S.read_text().splitlines():
        m = re.match(r"\s*#\s*define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)\s*(?:/\*.*)?$", line)
        if m:
            values[m.group(1)] = int(m.group(2), 0)
    return values


@pytest.mark.parametrize("name, expected", [
    ("IST_TOP_OFFSET", layout.IST_TOP_OFFSET),
    ("FRAME_PAGE_FRAME_OFFSET", layout.FRAME_PAGE_OFFSET + layout.FRAME_OFFSET),
    ("ZAP_LIST_OFFSET", layout.ZAP_LIST_OFFSET),
    ("SYSCALL_PORT", layout.SYSCALL_PORT),
    ("EXCEPTION_PORT_BASE", layout.EXCEPTION_PORT_BASE),
])
def test_runtime_define_matches_layout(name, expected):
    defines = _defines()
    assert name in defines, f"runtime.S has no numeric #define {name}"
    assert defines[name] == expected, f"runtime.S {name}={defines[name]:#x}, layout.py says {expected:#x}"


def test_exception_frame_offset_is_below_the_ist_top():
    # runtime.S: the CPU pushes 5 qwords at the IST top, the stub one more.
    assert layout.EXCEPTION_FRAME_OFFSET == layout.IST_TOP_OFFSET - 6 * 8


def test_iret_frame_fits_in_the_frame_page():
    assert 0 <= layout.FRAME_OFFSET and layout.FRAME_OFFSET + 5 * 8 <= 0x1000


def test_vcpu_slot_regions_fit_the_stride():
    end = layout.ZAP_LIST_OFFSET + layout.ZAP_LIST_PAGES * 0x1000
    assert end <= layout.VCPU_STRIDE
    assert layout.IST_TOP_OFFSET <= layout.ZAP_LIST_OFFSET
    assert layout.GDT_TSS_OFFSET + 104 + 33 <= 0x1000
