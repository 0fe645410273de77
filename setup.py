"""Build steps that pyproject.toml cannot express.

1. ``cffi_modules`` compiles ``kvmsentry.vm._kvm`` (cffi API mode) from
   kvmsentry/vm/_kvm_build.py against the host's <linux/kvm.h>.
2. ``build_py`` also assembles the ring-0 guest runtime (guest/runtime.S,
   linked with guest/runtime.ld) into ``kvmsentry/platform/runtime.elf``,
   which ships inside the package; the platform loads it through
   importlib.resources.

Both work for ``pip install .`` (outputs in the wheel) and for
``pip install -e .`` (outputs written next to the sources).
"""

import os
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME_SOURCE = os.path.join("guest", "runtime.S")
RUNTIME_LINKER_SCRIPT = os.path.join("guest", "runtime.ld")
RUNTIME_ELF = os.path.join("kvmsentry", "platform", "runtime.elf")


def assemble_runtime(target):
    """Assemble and link guest/runtime.S into the ELF file ``target``.

    gcc runs the C preprocessor over the .S file (for its #defines); ld
    places the code at the kernel address given in guest/runtime.ld.
    """
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "runtime.o")
        for argv in (
            ["gcc", "-c", os.path.join(HERE, RUNTIME_SOURCE), "-o", obj],
            ["ld", "-T", os.path.join(HERE, RUNTIME_LINKER_SCRIPT), "-o", target, obj],
        ):
            print(" ".join(argv))
            subprocess.run(argv, check=True)


class build_py_with_runtime(build_py):
    """build_py, plus the guest runtime as package data."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            assemble_runtime(os.path.join(HERE, RUNTIME_ELF))
        else:
            assemble_runtime(os.path.join(self.build_lib, RUNTIME_ELF))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, RUNTIME_ELF))
        return outputs


setup(
    cffi_modules=["kvmsentry/vm/_kvm_build.py:ffibuilder"],
    cmdclass={"build_py": build_py_with_runtime},
)
