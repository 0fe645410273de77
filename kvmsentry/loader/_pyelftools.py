"""The parts of pyelftools the loader uses, imported without what it never calls.

pyelftools bundles construct 2.06, whose package imports two modules only
for names that parsing an ELF header never uses:
- its ``debug`` module, for ``Probe`` and ``Debugger`` (which nothing in
  pyelftools uses); it imports pdb, inspect and traceback (with bdb, cmd,
  code, dis, ast, tokenize, glob...): ~5 ms of every ``kvmsentry boot``;
- ``pprint``, for ``pformat``, which ``Container.__pretty_str__`` calls to
  print a parsed struct; pprint imports dataclasses, and dataclasses
  inspect: ~4 ms more.
Here ``elftools.construct`` is imported with stand-ins for those two
modules in ``sys.modules``, which are gone again afterwards: a later
``import pprint`` or ``import elftools.construct.debug`` gets the real
module. What construct kept of them loads the real thing when used:
``elftools.construct.Probe`` and ``Debugger`` through a module
``__getattr__`` (PEP 562), ``pformat`` through a function that imports
pprint when called. pyelftools itself is unchanged and stays the parser
of guest ELF files (``kvmsentry.loader.elf``).
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


def _pformat(*args, **kwargs) -> str:
    """pprint.pformat, pprint imported on the first call."""
    import pprint
    return pprint.pformat(*args, **kwargs)


def _stand_in(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _import_construct() -> None:
    """Import ``elftools.construct`` with the stand-ins of the module doc.

    Does nothing when it is already imported. A stand-in is used only for
    a module not imported yet. Should a pyelftools release want another
    name from them, the import is redone the ordinary way.
    """
    if "elftools.construct" in sys.modules:
        return
    stand_ins = {_DEBUG: _stand_in(_DEBUG, **dict.fromkeys(_DEBUG_NAMES)),
                 "pprint": _stand_in("pprint", pformat=_pformat)}
    stand_ins = {name: module for name, module in stand_ins.items() if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        import elftools.construct as construct
    except ImportError:
        construct = None
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    if construct is None:  # another name wanted from them: import it all
        for name in [m for m in sys.modules if m == "elftools.construct" or m.startswith("elftools.construct.")]:
            del sys.modules[name]
        import elftools.construct  # noqa: F401
        return
    debug = stand_ins.get(_DEBUG)
    if debug is not None:
        namespace = vars(construct)
        for name in _DEBUG_NAMES:
            if name in namespace and namespace[name] is None:
                del namespace[name]
        if namespace.get("debug") is debug:
            del namespace["debug"]
        namespace["__getattr__"] = _debug_name


_import_construct()

from elftools.common.exceptions import ELFError  # noqa: E402
from elftools.construct.core import ConstructError  # noqa: E402
from elftools.elf.structs import ELFStructs  # noqa: E402

__all__ = ["ConstructError", "ELFError", "ELFStructs"]
