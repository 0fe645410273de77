"""The syscall table: every x86-64 name, registration by name, support
levels, and MODULES (which module registers each syscall: what a first
call imports) against the modules themselves."""

import errno
import importlib
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import kvmsentry.kernel.syscalls as syscalls_package
from kvmsentry.abi.syscall_64 import NUMBERS, SYSCALLS
from kvmsentry.kernel.syscalls import table

table.load_all()  # every handler registered


def test_well_known_numbers():
    # arch/x86/entry/syscalls/syscall_64.tbl
    assert SYSCALLS[0] == "read"
    assert SYSCALLS[39] == "getpid"
    assert SYSCALLS[59] == "execve"
    assert SYSCALLS[262] == "newfstatat"
    assert SYSCALLS[435] == "clone3"
    assert NUMBERS["pread64"] == 17
    assert NUMBERS["rt_sigaction"] == 13


def test_every_number_has_a_row():
    assert [row.number for row in table.TABLE] == sorted(SYSCALLS)
    for row in table.TABLE:
        assert table.entry(row.number) is row
        assert row.name == SYSCALLS[row.number]


def test_misspelt_name_fails_at_registration():
    with pytest.raises(KeyError):
        table.syscall("getpidd")


def test_double_registration_is_refused():
    with pytest.raises(ValueError):
        table.syscall("getpid")(lambda task: 0)


def test_handlers_are_named_after_the_syscall():
    for row in table.TABLE:
        if row.handler is not None and row.support != table.ERROR:
            name = getattr(row.handler, "__wrapped__", row.handler).__name__
            assert name == f"sys_{row.name}", (row.number, name)


def test_support_levels():
    levels = {row.support for row in table.TABLE}
    assert levels <= {table.SUPPORTED, table.PARTIAL, table.ERROR, table.UNIMPLEMENTED}
    assert table.entry(NUMBERS["read"]).support == table.SUPPORTED
    assert table.entry(NUMBERS["rseq"]).support == table.ERROR
    assert table.entry(NUMBERS["rseq"]).errno == errno.ENOSYS
    # Partial support says what is missing.
    for row in table.TABLE:
        if row.support == table.PARTIAL:
            assert row.note, row.name


def test_unknown_number():
    assert table.entry(100000) is None


def test_modules_names_what_each_module_registers():
    """MODULES against the modules: each syscall's handler comes from the
    module MODULES gives it to, every module of the package is in MODULES,
    and no row is left to a LazyHandler once they are all imported."""
    modules = {m.name for m in pkgutil.iter_modules(syscalls_package.__path__)} - {"table"}
    assert set(table.MODULES) == modules
    listed = {}
    for module, names in table.MODULES.items():
        for name in names.split():
            assert name not in listed, f"{name} listed for {listed[name]} and {module}"
            listed[name] = module
    registered = {}
    for row in table.TABLE:
        assert not isinstance(row.handler, table.LazyHandler), row.name
        if row.handler is None:
            assert row.module == "" and row.support == table.UNIMPLEMENTED, row.name
            continue
        if row.support == table.ERROR:
            module = row.module  # checked at registration (table._claim)
        else:
            module = getattr(row.handler, "__wrapped__", row.handler).__module__
            assert module == row.module, row.name
        registered[row.name] = module.rsplit(".", 1)[1]
    assert registered == listed


def test_claim_refuses_a_module_the_table_does_not_name():
    row = table.entry(NUMBERS["getpid"])
    saved = row.handler
    row.handler = table.LazyHandler(row)  # as before kvmsentry.kernel.syscalls.process is imported
    try:
        with pytest.raises(ValueError, match="gives it to kvmsentry.kernel.syscalls.process"):
            table.syscall("getpid")(lambda task: 0)
        with pytest.raises(ValueError, match="gives it to no module"):
            table.error("vhangup", errno.EPERM)
    finally:
        row.handler = saved
    assert table.entry(NUMBERS["vhangup"]).handler is None


def _fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this one has every module); its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_handler_modules_are_imported_on_first_call():
    out = _fresh("""
        import sys
        from kvmsentry.kernel import kernel  # noqa: F401
        from kvmsentry.kernel.syscalls import table
        from kvmsentry.abi.syscall_64 import NUMBERS
        timers = "kvmsentry.kernel.syscalls.timers"
        row = table.entry(NUMBERS["sched_get_priority_max"])
        print(timers in sys.modules, type(row.handler).__name__, row.nargs)
        # the dispatcher passes all six registers to a LazyHandler: SCHED_FIFO
        print(row.handler(None, 1, 0, 0, 0, 0, 0))
        print(timers in sys.modules, row.handler.__name__, row.nargs, row.support)
    """)
    assert out.split("\n")[:3] == ["False LazyHandler 6", "99",
                                    "True sys_sched_get_priority_max 1 supported"]
