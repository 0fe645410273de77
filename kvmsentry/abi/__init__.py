"""The Linux x86-64 ABI as data: syscall numbers (``syscall_64``), auxv
types (``auxv``), struct layouts (``structs``). Errno values are Python's
``errno`` module (identical on x86-64 Linux)."""
