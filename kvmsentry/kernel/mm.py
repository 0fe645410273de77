"""Placeholder: the memory manager (VMAs, copy_in/copy_out) lands next."""


class GuestFault(Exception):
    """A guest address the sentry tried to read or write is not mapped for it.

    ``gva`` is the first faulting guest-virtual address. The syscall
    dispatcher turns it into EFAULT.
    """

    def __init__(self, gva: int):
        super().__init__(f"guest address {gva:#x} is not mapped")
        self.gva = gva
