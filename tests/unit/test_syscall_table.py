"""The syscall table: every x86-64 name, registration by name, support levels."""

import errno

import pytest

from kvmsentry.abi.syscall_64 import NUMBERS, SYSCALLS
from kvmsentry.kernel import kernel  # noqa: F401  (registers every handler)
from kvmsentry.kernel.syscalls import table


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
