"""What a boot imports: the heavy modules stay out until something uses them.

Each check runs in a fresh interpreter (this test process has imported
everything already). What is kept out, and why it must still work when
asked for:
- construct's debugger (pdb and the rest) and pprint (with dataclasses
  and inspect): kvmsentry/loader/_pyelftools.py imports pyelftools
  without them; ``elftools.construct.Probe`` and ``Debugger`` still load
  the real ones, a parsed Container still prints (pprint.pformat).
"""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (it must exit 0)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_loader_imports_pyelftools_without_pdb():
    out = _run("""
        import sys
        import kvmsentry.loader.elf
        print(sorted(m for m in ("pdb", "bdb", "pprint", "elftools.construct.debug")
                     if m in sys.modules))
    """)
    assert out.split("\n")[0] == "[]"


def test_construct_debug_names_still_load():
    out = _run("""
        import kvmsentry.loader.elf as elf
        import elftools.construct as construct
        from elftools.construct.debug import Debugger, Probe
        assert construct.Probe is Probe and construct.Debugger is Debugger
        from elftools.construct import *  # noqa: F403  (every name of __all__ resolves)
        try:
            construct.NoSuchName
        except AttributeError:
            pass
        else:
            raise AssertionError("NoSuchName")
        print(elf.load_elf("/proc/self/exe").entry > 0)
    """)
    assert out.strip() == "True"


def test_construct_containers_still_print():
    out = _run("""
        import sys
        import kvmsentry.loader.elf as elf
        from elftools.construct.lib.container import Container
        assert "pprint" not in sys.modules
        print(str(Container(a=1, b=[2, 3])))
        import pprint  # the real module, not the stand-in
        print(pprint.pformat({"x": 1}), hasattr(pprint, "PrettyPrinter"))
    """)
    assert out.split("\n")[:2] == ["Container({'a': 1, 'b': [2, 3]})", "{'x': 1} True"]


def test_kernel_imports_no_dataclasses():
    """No import-time dataclass on the boot path: dataclasses brings inspect,
    ast, dis and tokenize (~4-8 ms of every start)."""
    out = _run("""
        import sys
        import kvmsentry.cli, kvmsentry.kernel.kernel, kvmsentry.platform.kvm
        from kvmsentry.kernel.syscalls import table
        table.load_all()
        print(sorted(m for m in ("dataclasses", "inspect", "pprint") if m in sys.modules))
    """)
    assert out.split("\n")[0] == "[]"
