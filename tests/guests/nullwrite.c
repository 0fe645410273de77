/* Writes through a null pointer: the process must die of SIGSEGV (139). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    /* The address comes from outside so that gcc emits a real store. */
    volatile int *p = (volatile int *)strtoul(argc > 1 ? argv[1] : "0", NULL, 0);
    printf("writing to %p\n", (void *)p);
    fflush(stdout);
    *p = 42;
    puts("still alive");
    return 0;
}
