"""``--strace`` lines: ``[pid:tid] name(args) = result (elapsed)``.

Arguments are printed from the raw registers; for calls whose arguments
are known to be paths or output buffers the strings are decoded, as
strace(1) does. Only used when --strace is on: the hot path never imports
this module otherwise.
"""

from __future__ import annotations

import errno

# Which argument (0-based) of a syscall is a NUL-terminated path.
_PATH_ARG = {
    "open": 0, "stat": 0, "lstat": 0, "access": 0, "readlink": 0, "chdir": 0,
    "execve": 0, "creat": 0, "statfs": 0, "truncate": 0,
    "openat": 1, "newfstatat": 1, "faccessat": 1, "faccessat2": 1,
    "readlinkat": 1, "statx": 1,
}
# Which argument is a buffer of ``count`` bytes (count is the next argument) written by the guest.
_WRITE_BUFFER = {"write": 1, "pwrite64": 1}
_SHOW = 32  # bytes of a buffer shown


def _string(task, gva: int, limit: int) -> str:
    try:
        data = task.mm.copy_in(gva, limit)
    except Exception:  # a bad pointer is printed as an address, like strace
        return f"{gva:#x}"
    return '"' + data.decode("latin-1").encode("unicode_escape").decode("ascii") + '"' + (
        "..." if limit == _SHOW else "")


def format_call(task, row, nr: int, regs, result, elapsed: float) -> str:
    """One strace line for syscall ``nr`` (``result`` None: it did not return)."""
    name = row.name if row is not None else f"syscall_{nr}"
    nargs = row.nargs if row is not None and row.handler is not None else 6
    raw = (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9)[:nargs]
    args = []
    for i, value in enumerate(raw):
        if _PATH_ARG.get(name) == i:
            try:
                args.append('"' + task.mm.read_cstring(value).decode("latin-1") + '"')
            except Exception:
                args.append(f"{value:#x}")
        elif _WRITE_BUFFER.get(name) == i and i + 1 < len(raw):
            count = min(raw[i + 1], _SHOW)
            args.append(_string(task, value, count))
        elif value >= 1 << 63:
            args.append(str(value - (1 << 64)))
        elif value > 0xFFFF:
            args.append(f"{value:#x}")
        else:
            args.append(str(value))
    call = f"[{task.pid}:{task.tid}] {name}({', '.join(args)})"
    if result is None:
        return f"{call} = ?"
    if -4096 < result < 0:
        err = -result
        return f"{call} = -1 {errno.errorcode.get(err, err)} ({elapsed * 1e6:.0f} us)"
    shown = f"{result:#x}" if result > 0xFFFF else str(result)
    return f"{call} = {shown} ({elapsed * 1e6:.0f} us)"
