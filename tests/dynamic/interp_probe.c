/* A program interpreter that reports what the kernel handed it, then exits.
 *
 * Built freestanding as a static-pie (no libc: nothing of it may depend on
 * AT_PHDR, which names the PROGRAM's headers, not ours), and named by the
 * PT_INTERP of test programs (-Wl,--dynamic-linker=THIS). Linux's
 * load_elf_binary maps the program and this file and starts here: AT_BASE
 * is our load address, AT_ENTRY and AT_PHDR the program's.
 *
 * Prints facts that hold on every run (no addresses): which checks pass,
 * the program's PT_INTERP string, argv. With argv[1] == "addr" it prints
 * AT_BASE and the program's load bias too (they are random).
 */
#include <elf.h>

extern const Elf64_Ehdr __ehdr_start;  /* our own ELF header: our load base */

static long sys3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static unsigned long len(const char *s) {
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

static void put(const char *s) { sys3(1, 1, (long)s, (long)len(s)); }

static void put_hex(unsigned long v) {
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    put(buf + i);
}

static void check(const char *what, int ok) {
    put(what);
    put(ok ? ": yes\n" : ": NO\n");
}

__attribute__((used)) static void probe(unsigned long *sp) {
    unsigned long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    while (*envp)
        envp++;
    Elf64_auxv_t *aux = (Elf64_auxv_t *)(envp + 1);
    unsigned long base = 0, entry = 0, phdr = 0, phnum = 0, phent = 0;
    for (; aux->a_type != AT_NULL; aux++) {
        switch (aux->a_type) {
        case AT_BASE: base = aux->a_un.a_val; break;
        case AT_ENTRY: entry = aux->a_un.a_val; break;
        case AT_PHDR: phdr = aux->a_un.a_val; break;
        case AT_PHNUM: phnum = aux->a_un.a_val; break;
        case AT_PHENT: phent = aux->a_un.a_val; break;
        }
    }
    check("AT_BASE is the interpreter's load address", base == (unsigned long)&__ehdr_start);
    check("AT_BASE is page aligned", base && (base & 4095) == 0);
    check("AT_PHENT", phent == sizeof(Elf64_Phdr));
    const Elf64_Phdr *ph = (const Elf64_Phdr *)phdr;
    unsigned long bias = 0, text_lo = 0, text_hi = 0;
    const char *interp = "";
    int have_phdr = 0;
    for (unsigned long i = 0; i < phnum; i++)
        if (ph[i].p_type == PT_PHDR) {
            bias = phdr - ph[i].p_vaddr;
            have_phdr = 1;
        }
    for (unsigned long i = 0; i < phnum; i++) {
        if (ph[i].p_type == PT_INTERP)
            interp = (const char *)(bias + ph[i].p_vaddr);
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X)) {
            text_lo = bias + ph[i].p_vaddr;
            text_hi = text_lo + ph[i].p_memsz;
        }
    }
    const Elf64_Ehdr *prog = 0;
    for (unsigned long i = 0; i < phnum; i++)
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
            prog = (const Elf64_Ehdr *)(bias + ph[i].p_vaddr);
            break;
        }
    check("AT_PHDR names the program's PT_PHDR", have_phdr);
    check("AT_ENTRY is in the program's text", text_lo <= entry && entry < text_hi);
    check("AT_ENTRY is the program's e_entry", prog && bias + prog->e_entry == entry);
    check("the program is ET_DYN", prog && prog->e_type == ET_DYN);
    check("the interpreter is mapped apart from the program",
          base >= text_hi || base + 4096 <= text_lo);
    put("PT_INTERP: ");
    put(interp);
    put("\nargv:");
    for (unsigned long i = 0; i < argc; i++) {
        put(" ");
        put(argv[i]);
    }
    put("\n");
    if (argc > 1 && argv[1][0] == 'a' && argv[1][1] == 'd') {
        put("AT_BASE ");
        put_hex(base);
        put(" bias ");
        put_hex(bias);
        put("\n");
    }
    sys3(231, 0, 0, 0);  /* exit_group(0) */
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call probe\n hlt\n");
