/*
 * mempolicy.c: get_mempolicy(2) and set_mempolicy(2) on this machine's
 * one NUMA node: what procps' ps and libnuma ask, and the errors.
 * Prints one line per call: result, errno, the policy and the first
 * mask word.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_PREFERRED_MANY 5
#define MPOL_F_NODE 1
#define MPOL_F_ADDR 2
#define MPOL_F_MEMS_ALLOWED 4
#define MPOL_F_NUMA_BALANCING (1 << 13)
#define MPOL_F_RELATIVE_NODES (1 << 14)
#define MPOL_F_STATIC_NODES (1 << 15)

static unsigned long mask[16];
static int mode;

static void get(const char *what, unsigned long maxnode, unsigned long addr, unsigned long flags)
{
    memset(mask, 0xaa, sizeof mask);
    mode = -7;
    long r = syscall(SYS_get_mempolicy, &mode, mask, maxnode, addr, flags);
    printf("get %s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)\n", errno);
    else
        printf(" mode %#x mask %#lx next %#lx\n", mode, mask[0], mask[1]);
}

static void set(const char *what, int m, unsigned long nodes, unsigned long maxnode)
{
    unsigned long nm[16] = {nodes};
    long r = syscall(SYS_set_mempolicy, m, nodes == ~0UL ? NULL : nm, maxnode);
    printf("set %s = %ld", what, r);
    if (r < 0)
        printf(" (errno %d)", errno);
    printf("\n");
    if (r == 0)
        get("after it", 1025, 0, 0);
}

int main(void)
{
    get("default", 1025, 0, 0);
    get("mems allowed", 1025, 0, MPOL_F_MEMS_ALLOWED);
    get("maxnode 0", 0, 0, 0);
    get("maxnode 1", 1, 0, 0);
    get("maxnode 2", 2, 0, 0);
    get("maxnode 64", 64, 0, 0);
    get("maxnode 65", 65, 0, 0);
    get("maxnode 40000", 40000, 0, 0);
    get("bad flags", 1025, 0, 8);
    get("addr without F_ADDR", 1025, 0x1000, 0);
    get("F_NODE alone", 1025, 0, MPOL_F_NODE);
    get("F_ADDR unmapped", 1025, 0x1000, MPOL_F_ADDR);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    get("F_ADDR mapped", 1025, (unsigned long)p, MPOL_F_ADDR);
    get("F_ADDR|F_NODE", 1025, (unsigned long)p, MPOL_F_ADDR | MPOL_F_NODE);
    get("MEMS_ALLOWED|F_NODE", 1025, 0, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE);
    long r = syscall(SYS_get_mempolicy, NULL, NULL, 0, 0, 0);
    printf("get NULL, NULL = %ld\n", r);
    r = syscall(SYS_get_mempolicy, (void *)8, NULL, 0, 0, 0);
    printf("get bad policy pointer = %ld (errno %d)\n", r, errno);
    r = syscall(SYS_get_mempolicy, &mode, (void *)8, 1025, 0, 0);
    printf("get bad mask pointer = %ld (errno %d)\n", r, errno);

    set("preferred-many node 0 (what ps does)", MPOL_PREFERRED_MANY, 1, 1024);
    set("default, empty mask", MPOL_DEFAULT, 0, 1025);
    set("default with node 0", MPOL_DEFAULT, 1, 1025);
    set("bind node 0", MPOL_BIND, 1, 1025);
    set("bind node 1", MPOL_BIND, 2, 1025);
    set("bind nodes 0,1", MPOL_BIND, 3, 1025);
    set("bind, no nodes", MPOL_BIND, 0, 1025);
    set("interleave node 0", MPOL_INTERLEAVE, 1, 1025);
    get("F_NODE with interleave", 1025, 0, MPOL_F_NODE);
    set("preferred, no nodes", MPOL_PREFERRED, 0, 1025);
    set("preferred node 0", MPOL_PREFERRED, 1, 1025);
    set("local", MPOL_LOCAL, 0, 1025);
    set("local with node 0", MPOL_LOCAL, 1, 1025);
    set("bind|static node 0,3", MPOL_BIND | MPOL_F_STATIC_NODES, 9, 1025);
    {   /* a static mask with a node past the first word: only nr_node_ids' word is written back */
        unsigned long wide[16] = {1, 1};
        long r = syscall(SYS_set_mempolicy, MPOL_BIND | MPOL_F_STATIC_NODES, wide, 1025);
        printf("set bind|static nodes 0,64 = %ld\n", r);
        get("after it", 1025, 0, 0);
    }
    set("bind|relative node 3", MPOL_BIND | MPOL_F_RELATIVE_NODES, 8, 1025);
    set("static|relative", MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, 1, 1025);
    set("interleave|numa balancing", MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, 1, 1025);
    set("bind|numa balancing", MPOL_BIND | MPOL_F_NUMA_BALANCING, 1, 1025);
    set("mode 7", 7, 1, 1025);
    set("mode -1", -1, 1, 1025);
    set("maxnode 40000", MPOL_BIND, 1, 40000);
    set("NULL mask, bind", MPOL_BIND, ~0UL, 1025);
    set("default again", MPOL_DEFAULT, 0, 0);
    r = syscall(SYS_set_mempolicy, MPOL_BIND, (void *)8, 1025);
    printf("set bad mask pointer = %ld (errno %d)\n", r, errno);
    return 0;
}
