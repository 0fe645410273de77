"""Program loading: ELF parsing/validation (``elf``) and the initial stack
(``stack``). Pure code: nothing here touches guest memory."""

from kvmsentry.loader.elf import ElfError, ElfImage, Segment, load_elf
from kvmsentry.loader.stack import (
    ArgListTooLong,
    InitialStack,
    build_initial_stack,
    make_auxv,
    parse_initial_stack,
)

__all__ = [
    "ArgListTooLong",
    "ElfError",
    "ElfImage",
    "InitialStack",
    "Segment",
    "build_initial_stack",
    "load_elf",
    "make_auxv",
    "parse_initial_stack",
]
