# kvmsentry developer tasks.
#
#   make run     set everything up and boot a guest (busybox) under kvmsentry
#   make test    set everything up and run the test suite
#   make clean   remove the virtualenv and every build output
#
# Both `run` and `test` install the Debian packages they need when run as
# root (or with password-less sudo); otherwise they print the apt-get command.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# Touched after a successful install; redone when the build inputs change.
STAMP   := $(VENV)/.installed

# A C toolchain and the kernel headers (<linux/kvm.h>) for the cffi module
# and the guest runtime, Python's venv and headers, and the programs the
# tests run or build guests with. busybox-static is added when /bin/busybox
# is missing.
DEB_PACKAGES := gcc libc6-dev linux-libc-dev python3-dev python3-venv golang-go \
                musl-tools bash-static

BUILD_INPUTS := pyproject.toml setup.py guest/runtime.S guest/runtime.ld guest/vdso.c guest/vdso.lds \
                kvmsentry/vm/_kvm_build.py

.PHONY: run test deps runtime clean

run: $(STAMP)
	$(BIN)/kvmsentry boot /bin/busybox echo "hello from kvmsentry"
	$(BIN)/kvmsentry boot /bin/busybox uname -a

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# The package, editable, with the test extras. The cffi module and
# kvmsentry/platform/runtime.elf are built into the source tree (see
# setup.py). An old in-tree _kvm*.so would shadow the new one: remove it.
# editable_mode=compat puts the tree on sys.path with a plain .pth line:
# setuptools' default editable finder imports pathlib, urllib and more at
# every interpreter start (10-25 ms of each `kvmsentry boot`, which a wheel
# install does not pay; BENCHMARKS.md, issue 5, coldstart second pass).
$(STAMP): $(BUILD_INPUTS) Makefile | deps
	$(PYTHON) -m venv $(VENV)
	rm -f kvmsentry/vm/_kvm*.so
	$(BIN)/pip install -e '.[test]' --config-settings editable_mode=compat
	touch $@

deps:
	@if ! command -v dpkg-query >/dev/null; then \
	    echo "kvmsentry: not a Debian system; make sure these are installed: $(DEB_PACKAGES) busybox-static"; \
	    exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	[ -e /bin/busybox ] || missing="$$missing busybox-static"; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && apt-get install -y $$missing; \
	elif sudo -n true 2>/dev/null; then \
	    sudo apt-get update && sudo apt-get install -y $$missing; \
	else \
	    echo "kvmsentry: missing Debian packages; install them with:"; \
	    echo "    sudo apt-get update && sudo apt-get install -y$$missing"; \
	fi

# Rebuild only the guest runtime and the vDSO, in place (while working on guest/).
runtime:
	gcc -c guest/runtime.S -o guest/runtime.o
	ld -T guest/runtime.ld -o kvmsentry/platform/runtime.elf guest/runtime.o
	rm -f guest/runtime.o
	gcc -O2 -fPIC -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -nostdlib \
	    -shared -Wl,--hash-style=both -Wl,-soname=linux-vdso.so.1 -Wl,--no-undefined \
	    -Wl,-z,max-page-size=4096 -Wl,-T,guest/vdso.lds -o kvmsentry/platform/vdso64.elf guest/vdso.c

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	rm -f kvmsentry/vm/_kvm.c kvmsentry/vm/_kvm*.so kvmsentry/vm/_kvm*.o
	rm -f kvmsentry/platform/runtime.elf kvmsentry/platform/vdso64.elf guest/*.o
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
