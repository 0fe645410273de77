/* Unbounded recursion: Linux stops the stack at RLIMIT_STACK (8 MiB) with SIGSEGV. */
#include <stdio.h>

static int depth(volatile char *previous) {
    volatile char frame[4096];
    frame[0] = previous ? previous[0] + 1 : 0;
    return depth(frame) + frame[0];
}

int main(void) {
    printf("recursing\n");
    fflush(stdout);
    return depth(0);
}
