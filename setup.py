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
VDSO_SOURCE = os.path.join("guest", "vdso.c")
VDSO_LINKER_SCRIPT = os.path.join("guest", "vdso.lds")
VDSO_SO = os.path.join("kvmsentry", "platform", "vdso64.elf")  # not .so: it would shadow vdso.py
# The vDSO is a self-contained shared object: no libc, no relocations,
# symbols versioned LINUX_2.6 as libc and Go look them up.
VDSO_CFLAGS = ["-O2", "-fPIC", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
               "-fno-builtin", "-nostdlib", "-shared", "-Wl,--hash-style=both",
               "-Wl,-soname=linux-vdso.so.1", "-Wl,--no-undefined", "-Wl,-z,max-page-size=4096"]


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


def build_vdso(target):
    """Compile and link guest/vdso.c into the shared object ``target``."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    argv = (["gcc"] + VDSO_CFLAGS + ["-Wl,-T," + os.path.join(HERE, VDSO_LINKER_SCRIPT),
                                     "-o", target, os.path.join(HERE, VDSO_SOURCE)])
    print(" ".join(argv))
    subprocess.run(argv, check=True)


class build_py_with_runtime(build_py):
    """build_py, plus the guest runtime and the vDSO as package data."""

    def run(self):
        super().run()
        root = HERE if getattr(self, "editable_mode", False) else self.build_lib
        assemble_runtime(os.path.join(root, RUNTIME_ELF))
        build_vdso(os.path.join(root, VDSO_SO))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs += [os.path.join(self.build_lib, RUNTIME_ELF), os.path.join(self.build_lib, VDSO_SO)]
        return outputs


setup(
    cffi_modules=["kvmsentry/vm/_kvm_build.py:ffibuilder"],
    cmdclass={"build_py": build_py_with_runtime},
)
