"""The ``kvmsentry`` command: ``boot`` a program, list the ``syscalls`` table,
``bench`` the workloads natively, under kvmsentry and under gVisor's runsc.

Exit statuses of ``kvmsentry boot``: the guest's exit code; 128 + N when a
signal N killed it; 126 when the file is not a program we can run (not an
ELF, wrong machine, malformed, a directory, a bad interpreter); 127 when it
or the interpreter it names does not exist; 125 when kvmsentry itself fails (no KVM, a sentry bug).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
EXIT_SENTRY_FAILURE = 125


MAX_MEMORY = 64 << 30  # the frame allocator keeps 2 bytes per 4 KiB frame


def _parse_memory(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower()
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = int(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 4G)") from None
    if value < 16 << 20:
        raise argparse.ArgumentTypeError("at least 16M of guest memory is needed")
    if value > MAX_MEMORY:
        raise argparse.ArgumentTypeError(f"at most {MAX_MEMORY >> 30}G of guest memory is supported")
    return value & ~0xFFF


def _parse_user(text: str) -> tuple[int, int]:
    """--user UID:GID as (uid, gid): numbers in [0, 2**32 - 2]."""
    uid, sep, gid = text.partition(":")
    try:
        ids = (int(uid), int(gid))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected UID:GID (numbers), not {text!r}") from None
    if not sep or not all(0 <= i < 0xFFFFFFFF for i in ids):
        raise argparse.ArgumentTypeError(f"expected UID:GID (numbers), not {text!r}")
    return ids


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout with the terminal width found without shutil.

    argparse builds a formatter for every add_argument, and its default
    imports shutil for get_terminal_size (with zlib, bz2, lzma: ~2 ms of
    every start). The width is found by shutil.get_terminal_size's rule:
    $COLUMNS when a positive number, else the terminal of stdout, else 80;
    minus 2, as argparse does.
    """

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _BootOnlyParser(argparse.ArgumentParser):
    """The top-level parser built with the ``boot`` subcommand only (for a
    ``kvmsentry boot`` command line): its errors are the whole parser's,
    whose usage line names every subcommand."""

    def error(self, message):
        _parser().error(message)


def _parser(commands: tuple[str, ...] = ("boot", "syscalls", "bench")) -> argparse.ArgumentParser:
    """The command line's parser, with the subcommands in ``commands``.

    main() builds only ``boot`` for a ``kvmsentry boot`` command line: its
    help, usage and errors are the same, and bench's parser (which imports
    the bench package) is ~0.5 ms of every start.
    """
    cls = argparse.ArgumentParser if commands == ("boot", "syscalls", "bench") else _BootOnlyParser
    parser = cls(prog="kvmsentry", formatter_class=_HelpFormatter, description=(
        "Run a static x86-64 Linux program in ring 3 of a KVM VM, every system call "
        "emulated by a userspace kernel in Python."))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)
    if "boot" in commands:
        _boot_parser(sub)
    if "syscalls" in commands:
        syscalls = sub.add_parser("syscalls", help="print the syscall table and its support levels",
                                  formatter_class=_HelpFormatter)
        syscalls.add_argument("--all", action="store_true", help="include unimplemented syscalls")
    if "bench" in commands:
        _bench_parser(sub)
    return parser


def _boot_parser(sub) -> None:
    boot = sub.add_parser("boot", help="run a program in the sandbox", formatter_class=_HelpFormatter)
    boot.add_argument("--strace", action="store_true", help="print every syscall to stderr")
    boot.add_argument("--env", action="append", default=[], metavar="K=V",
                      help="add K=V to the guest's environment (repeatable); the guest "
                           "sees only these unless --inherit-env is given")
    boot.add_argument("--inherit-env", action="store_true",
                      help="start from kvmsentry's own environment")
    boot.add_argument("--cwd", default=None, metavar="DIR", help="the guest's working directory")
    boot.add_argument("--root", default="/", metavar="DIR",
                      help="host directory the guest sees as / (read-only; default /)")
    boot.add_argument("--mount", action="append", default=[], metavar="HOST:GUEST[:ro|rw]",
                      help="bind the host directory HOST at guest path GUEST (repeatable): "
                           "ro (default) refuses every change with EROFS, rw writes through "
                           "to HOST (confined beneath it)")
    boot.add_argument("--user", type=_parse_user, default=(0, 0), metavar="UID:GID",
                      help="the guest's user and group ids (default 0:0, root, as runsc); "
                           "file permissions are checked against them")
    boot.add_argument("--memory", type=_parse_memory, default=4 << 30, metavar="SIZE",
                      help="guest memory (default 4G; pages are committed only when used)")
    boot.add_argument("--pids-limit", type=int, default=1024, metavar="N",
                      help="most tasks (threads and processes) alive at once; fork then "
                           "fails with EAGAIN (default 1024)")
    boot.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="kill the sandbox after this long (status 124)")
    boot.add_argument("--profile", action="store_true",
                      help="count exits by kind (syscalls by name, page faults, other "
                           "exceptions, interrupts) and the time in the guest vs the sentry; "
                           "print the breakdown to stderr at exit")
    boot.add_argument("--profile-json", default=None, metavar="FILE",
                      help="with --profile (implied): also write the breakdown as JSON to FILE")
    boot.add_argument("--syscall-path", choices=("exit", "ring", "auto"),
                      default=os.environ.get("KVMSENTRY_SYSCALL_PATH", "exit"),
                      help="how syscalls reach the sentry: exit (default) leaves the VM for "
                           "each; ring posts each in a page that a host thread polls while the "
                           "vCPU spins, falling back to an exit (faster with an idle core, "
                           "costs a spinning core, slower under load); auto picks ring when a "
                           "core is idle. "
                           "--strace implies exit (default: $KVMSENTRY_SYSCALL_PATH, else exit)")
    boot.add_argument("binary", metavar="BINARY")
    boot.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                      help="arguments for the program (argv[1:])")


def _bench_parser(sub) -> None:
    from kvmsentry.bench import PLATFORM_NAMES, WORKLOAD_NAMES
    bench = sub.add_parser(
        "bench", formatter_class=_HelpFormatter,
        help="run the benchmark workloads natively, under kvmsentry and under runsc",
        description="Run each workload natively, under kvmsentry and under gVisor's runsc "
                    "(each platform that answers here), interleaved, and report medians and "
                    "the ratio to native; then profile each under kvmsentry (exits by kind).")
    bench.add_argument("-n", type=int, default=3, metavar="N", help="rounds (default 3)")
    bench.add_argument("--workload", action="append", choices=WORKLOAD_NAMES, metavar="NAME",
                       help="run this workload (repeatable; default: all but find, futex and threads); "
                            "one of " + ", ".join(WORKLOAD_NAMES))
    bench.add_argument("--platform", action="append", choices=PLATFORM_NAMES, metavar="NAME",
                       help="run on this platform (repeatable; default: all); one of "
                            + ", ".join(PLATFORM_NAMES))
    bench.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    bench.add_argument("--json", metavar="FILE", help="write the samples and the summary as JSON")
    bench.add_argument("--plot", metavar="FILE",
                       help="write a PNG bar chart of the ratios to native (needs matplotlib)")
    bench.add_argument("--markdown", action="store_true",
                       help="print Markdown tables (for BENCHMARKS.md) instead of the rich table")
    bench.add_argument("--no-profile", action="store_true",
                       help="skip the --profile run of each workload under kvmsentry")
    bench.add_argument("--probe-timeout", type=float, default=20.0, metavar="SECONDS",
                       help="how long a platform may take to run `busybox true` before it "
                            "is reported as hanging (default 20)")
    bench.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="kill one run after this long (default 900, 120 with --quick)")


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = _parser(("boot",) if argv[:1] == ["boot"] else ("boot", "syscalls", "bench"))
    args = parser.parse_args(argv)
    if args.command == "boot":
        for item in args.env:
            if "=" not in item or item.startswith("="):
                parser.error(f"--env {item!r}: expected K=V")
        if args.pids_limit < 1:
            parser.error("--pids-limit must be at least 1")
        if args.timeout is not None and args.timeout <= 0:
            parser.error("--timeout must be positive")
        if args.profile_json is not None:
            where = os.path.dirname(os.path.abspath(args.profile_json))
            if os.path.isdir(args.profile_json) or not os.access(where, os.W_OK | os.X_OK):
                parser.error(f"--profile-json {args.profile_json}: cannot write there")
        if args.syscall_path not in ("exit", "ring", "auto"):  # from $KVMSENTRY_SYSCALL_PATH
            parser.error(f"KVMSENTRY_SYSCALL_PATH={args.syscall_path}: expected exit, ring or auto")
        if args.root is not None and not os.path.isdir(args.root):
            parser.error(f"--root {args.root}: not a directory")
        args.binds = [_parse_mount(parser, item) for item in args.mount]
        if args.cwd is not None:
            # In the sandbox's tree: inside --root, or a --mount target.
            cwd = _resolve_in_guest(args, _guest_cwd(args))
            if cwd is None or not os.path.isdir(cwd):
                parser.error(f"--cwd {args.cwd}: not a directory in the sandbox")
    if args.command == "bench":
        if args.n < 1:
            parser.error("-n must be at least 1")
        from kvmsentry.bench.runner import main as bench_main
        return bench_main(args)
    if args.command == "syscalls":
        try:
            return _syscalls(args)
        except BrokenPipeError:  # `kvmsentry syscalls | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    try:
        return _boot(args)
    except KeyboardInterrupt:
        # Ctrl-C: the guest dies of SIGINT as a foreground program would
        # (forwarding it to the guest comes with signal delivery).
        return 128 + 2


def run() -> None:
    """Entry point of the command: main(), then exit without tearing down.

    A sandbox holds a multi-GiB guest mapping and a VM; letting the kernel
    reclaim them at exit instead of running Python's finalization saves
    several ms of every coldstart.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None when kvmsentry was started with the fd closed
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(status)


def _syscalls(args) -> int:
    from kvmsentry.kernel.syscalls.table import TABLE, UNIMPLEMENTED, load_all
    load_all()  # every handler module registers its rows
    for row in TABLE:
        if row.support == UNIMPLEMENTED and not args.all:
            continue
        print(f"{row.number:4d}  {row.name:24s} {row.support:13s} {row.note}")
    return 0


def _fill_closed_stdio() -> tuple[int, ...]:
    """Open /dev/null on each of fds 0-2 that is closed; returns which were."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        placeholder = os.open(os.devnull, os.O_RDWR)
        if placeholder != fd:
            os.dup2(placeholder, fd)
            os.close(placeholder)
    return tuple(closed)


def _error(message: str) -> None:
    print(f"kvmsentry: {message}", file=sys.stderr, flush=True)


_MAXSYMLINKS = 40  # include/linux/namei.h: ELOOP beyond


def _guest_cwd(args) -> str:
    """The guest's working directory: --cwd, relative to the host's cwd
    when the sandbox's / is the host's; "/" (or the host's cwd) by default."""
    if args.root in ("/", None):
        return os.path.abspath(args.cwd) if args.cwd else os.getcwd()
    return os.path.join("/", args.cwd) if args.cwd else "/"


def _resolve_in_guest(args, guest: str) -> str | None:
    """The host path behind the absolute guest path ``guest``, resolved as
    the guest's own lookups would: --root as / (".." stops there, a
    symlink's absolute target starts from it: openat2's RESOLVE_IN_ROOT),
    each --mount's host directory at its guest path (the deepest one
    wins; a later one over an earlier one at the same place). None after
    40 symlinks (ELOOP)."""
    root = os.path.realpath(args.root or "/")
    points = [([n for n in bind.guest.split("/") if n], bind.host)
              for bind in getattr(args, "binds", ())]

    def host_of(names: list[str]) -> str:
        where, rest = root, names
        depth = -1
        for point, host in points:
            if len(point) >= depth and names[:len(point)] == point:
                where, rest, depth = host, names[len(point):], len(point)
        return os.path.join(where, *rest)

    todo = [n for n in guest.split("/") if n not in ("", ".")]
    todo.reverse()
    done: list[str] = []
    links = 0
    while todo:
        name = todo.pop()
        if name == "..":
            if done:
                done.pop()
            continue
        host = host_of(done + [name])
        if os.path.islink(host):
            links += 1
            if links > _MAXSYMLINKS:
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            todo.extend(reversed([n for n in target.split("/") if n not in ("", ".")]))
            continue
        done.append(name)
    return host_of(done)


def _host_path(args) -> str | None:
    """The host file BINARY names: a host path, or a guest path inside --root
    or a --mount (relative to --cwd), resolved as the guest would; None for
    a symlink loop."""
    binary = args.binary
    if args.root in ("/", None) and not getattr(args, "binds", ()):
        # Relative to --cwd, as the guest's execve would see it (not to
        # kvmsentry's own working directory).
        return os.path.join(_guest_cwd(args), binary)
    return _resolve_in_guest(args, os.path.join(_guest_cwd(args), binary))


def _parse_mount(parser, item: str):
    """A --mount HOST:GUEST[:ro|rw] option as a Bind (parser.error when malformed)."""
    from kvmsentry.kernel.vfs.mount import Bind
    parts = item.split(":")
    mode = "ro"
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        parser.error(f"--mount {item}: expected HOST:GUEST[:ro|rw]")
    host, guest = parts
    if mode not in ("ro", "rw"):
        parser.error(f"--mount {item}: the mode must be ro or rw, not {mode!r}")
    if not os.path.isdir(host):
        parser.error(f"--mount {item}: {host}: not a directory")
    if not guest.startswith("/"):
        parser.error(f"--mount {item}: the guest path {guest} must be absolute")
    if ".." in guest.split("/"):
        parser.error(f"--mount {item}: the guest path {guest} must not contain ..")
    norm = os.path.normpath(guest)
    if norm in ("/", "//") or norm.split("/")[1] in ("proc", "dev"):
        parser.error(f"--mount {item}: cannot mount over {norm}")
    return Bind(os.path.realpath(host), norm, mode == "rw")


def _check_binary(args) -> tuple[str | None, int]:
    """(host path of args.binary, 0), or (None, exit status) after saying
    on stderr why it cannot be run."""
    binary = _host_path(args)
    if binary is None:
        _error(f"{args.binary}: Too many levels of symbolic links")
        return None, EXIT_CANNOT_EXECUTE
    if not os.path.exists(binary):
        _error(f"{args.binary}: No such file or directory")
        return None, EXIT_NOT_FOUND
    if os.path.isdir(binary):
        _error(f"{args.binary}: cannot execute: Is a directory")
        return None, EXIT_CANNOT_EXECUTE
    if not os.access(binary, os.R_OK) or not os.access(binary, os.X_OK):
        _error(f"{args.binary}: cannot execute: Permission denied")
        return None, EXIT_CANNOT_EXECUTE
    return binary, 0


def _boot(args) -> int:
    binary, status = _check_binary(args)
    if binary is None:
        return status
    # A #! script runs its interpreter (fs/binfmt_script.c): argv becomes
    # the interpreter, its optional argument, the script as named, then
    # the script's own arguments; up to 4 levels, as fs/exec.c allows.
    from kvmsentry.kernel.syscalls.tasks import (BINPRM_BUF_SIZE, MAX_INTERPRETER_DEPTH,
                                                 _script)
    from kvmsentry.kernel.syscalls.table import SyscallError
    prefix: list[str] = []
    for depth in range(MAX_INTERPRETER_DEPTH + 1):
        with open(binary, "rb") as f:
            head = f.read(BINPRM_BUF_SIZE)
        try:
            script = _script(head)
        except SyscallError:
            script = b"", None
        if script is None:
            break
        interp, arg = script
        if not interp or depth == MAX_INTERPRETER_DEPTH:
            what = "Exec format error" if interp else "empty #! line"
            _error(f"{args.binary}: cannot execute: {what}")
            return EXIT_CANNOT_EXECUTE
        prefix = ([os.fsdecode(arg)] if arg else []) + [args.binary] + prefix
        args.binary = os.fsdecode(interp)
        binary, status = _check_binary(args)
        if binary is None:
            return status
    env = dict(os.environ) if args.inherit_env else {}
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    envp = [os.fsencode(f"{k}={v}") for k, v in env.items()]
    argv = [os.fsencode(a) for a in [args.binary, *prefix, *args.args]]
    cwd = _guest_cwd(args)
    # Keep fds 0-2 taken while KVM opens its fds, so that a closed stdio
    # fd stays closed for the guest instead of aliasing /dev/kvm.
    closed = _fill_closed_stdio()

    from kvmsentry.kernel.kernel import ExecError, Kernel, SentryBug
    from kvmsentry.kernel.task import Credentials
    from kvmsentry.platform.kvm import KvmPlatform
    from kvmsentry.vm.kvm import KvmError, KvmUnavailable
    uid, gid = args.user

    try:
        platform = KvmPlatform(args.memory)
    except KvmUnavailable as e:
        _error(str(e))
        return EXIT_SENTRY_FAILURE
    except OSError as e:  # KvmError, or the host refusing the guest memory mapping
        _error(f"cannot set up the VM: {e}")
        return EXIT_SENTRY_FAILURE
    kernel = Kernel(platform, strace=args.strace, root=args.root, pids_limit=args.pids_limit,
                    binds=getattr(args, "binds", ()), syscall_path=args.syscall_path)
    kernel.free_at_exit = False  # run() ends in os._exit: the host frees guest memory
    try:
        task = kernel.exec_first(binary, argv, envp, cwd, closed_stdio=closed,
                                 creds=Credentials(uid, uid, uid, gid, gid, gid))
    except ExecError as e:
        _error(f"{binary}: cannot execute: {e}")
        # A missing interpreter is ENOENT: 127, as a shell says.
        return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
    except OSError as e:
        _error(f"{binary}: cannot execute: {e.strerror}")
        return EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
    profiler = None
    if args.profile or args.profile_json:
        from kvmsentry.bench import profile
        profiler = profile.install(kernel)
    try:
        return kernel.run(task, timeout=args.timeout)
    except SentryBug as bug:
        print(bug.report, file=sys.stderr, flush=True)
        return EXIT_SENTRY_FAILURE
    finally:
        if profiler is not None:
            try:
                profiler.report(sys.stderr, args.profile_json)
            except OSError as e:  # the JSON file: the guest's status stands
                _error(f"--profile-json {args.profile_json}: {e.strerror}")
