"""ELF auxiliary vector entry types (the ``a_type`` of an auxv pair).

Values from include/uapi/linux/auxvec.h and, for the x86 ones (AT_SYSINFO,
AT_SYSINFO_EHDR), arch/x86/include/uapi/asm/auxvec.h. The vector itself is a
list of ``(a_type, a_val)`` pairs of two u64 each, terminated by AT_NULL; it
is laid out on the initial stack by ``kvmsentry.loader.stack`` (see
fs/binfmt_elf.c create_elf_tables and getauxval(3)).
"""

AT_NULL = 0           # end of vector
AT_IGNORE = 1         # entry should be ignored
AT_EXECFD = 2         # file descriptor of program
AT_PHDR = 3           # address of the program headers in memory
AT_PHENT = 4          # size of one program header entry (bytes)
AT_PHNUM = 5          # number of program headers
AT_PAGESZ = 6         # system page size (bytes)
AT_BASE = 7           # base address of the interpreter (0 if none)
AT_FLAGS = 8          # flags (always 0 on Linux)
AT_ENTRY = 9          # entry point of the program (relocated)
AT_NOTELF = 10        # program is not ELF
AT_UID = 11           # real uid
AT_EUID = 12          # effective uid
AT_GID = 13           # real gid
AT_EGID = 14          # effective gid
AT_PLATFORM = 15      # address of a string naming the CPU ("x86_64")
AT_HWCAP = 16         # CPU capability bits (CPUID.1:EDX on x86)
AT_CLKTCK = 17        # frequency of times(2) ticks (USER_HZ, 100)
AT_SECURE = 23        # secure mode (setuid/setgid) boolean
AT_BASE_PLATFORM = 24 # address of a string naming the real platform
AT_RANDOM = 25        # address of 16 random bytes
AT_HWCAP2 = 26        # extension of AT_HWCAP (x86: HWCAP2_RING3MWAIT, FSGSBASE)
AT_EXECFN = 31        # address of the filename the program was executed as
AT_SYSINFO = 32       # x86 (32-bit only): vsyscall entry point
AT_SYSINFO_EHDR = 33  # address of the vDSO's ELF header
AT_MINSIGSTKSZ = 51   # minimal stack size for signal delivery (bytes)

#: ``{value: name}`` for every AT_* constant above (for tracing/debugging).
AT_NAMES: dict[int, str] = {
    value: name
    for name, value in dict(globals()).items()
    if name.startswith("AT_") and isinstance(value, int)
}
