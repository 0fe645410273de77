"""The parts of pyelftools the loader uses, imported without construct's debugger.

pyelftools bundles construct 2.06, whose package ``__init__`` imports its
``debug`` module for two names, ``Probe`` and ``Debugger``, that nothing in
pyelftools uses; that module imports pdb, inspect and traceback (with bdb,
cmd, code, dis, ast, tokenize, glob...): ~5 ms of every ``kvmsentry boot``.
Here ``elftools.construct`` is imported with a placeholder standing in for
``elftools.construct.debug``; afterwards the placeholder is gone and the
package answers ``Probe`` and ``Debugger`` by importing the real module on
first use (a module ``__getattr__``, PEP 562), so code that asks for them
still gets construct's own. pyelftools itself is unchanged and stays the
parser of guest ELF files (``kvmsentry.loader.elf``).
"""

from __future__ import annotations

import sys
import types

_DEBUG = "elftools.construct.debug"
_DEBUG_NAMES = ("Probe", "Debugger")


def _debug_name(name: str):
    """``elftools.construct``'s module ``__getattr__``: Probe and Debugger
    from the real ``elftools.construct.debug``, imported now."""
    if name in _DEBUG_NAMES:
        __import__(_DEBUG)
        return getattr(sys.modules[_DEBUG], name)
    raise AttributeError(f"module 'elftools.construct' has no attribute {name!r}")


def _import_construct() -> None:
    """Import ``elftools.construct`` without its ``debug`` module (module doc).

    Does nothing when it is already imported. Should a pyelftools release
    import more from ``debug`` than the two names, the import is redone
    the ordinary way.
    """
    if "elftools.construct" in sys.modules:
        return
    placeholder = types.ModuleType(_DEBUG)
    for name in _DEBUG_NAMES:
        setattr(placeholder, name, None)
    sys.modules[_DEBUG] = placeholder
    try:
        import elftools.construct as construct
    except ImportError:
        construct = None
    finally:
        if sys.modules.get(_DEBUG) is placeholder:
            del sys.modules[_DEBUG]
    if construct is None:  # another name wanted from debug: import it all
        for name in [m for m in sys.modules if m == "elftools.construct" or m.startswith("elftools.construct.")]:
            del sys.modules[name]
        import elftools.construct  # noqa: F401
        return
    namespace = vars(construct)
    for name in _DEBUG_NAMES:
        if name in namespace and namespace[name] is None:
            del namespace[name]
    if namespace.get("debug") is placeholder:
        del namespace["debug"]
    namespace["__getattr__"] = _debug_name


_import_construct()

from elftools.common.exceptions import ELFError  # noqa: E402
from elftools.construct.core import ConstructError  # noqa: E402
from elftools.elf.structs import ELFStructs  # noqa: E402

__all__ = ["ConstructError", "ELFError", "ELFStructs"]
