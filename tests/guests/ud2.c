/* Executes ud2: the process must die of SIGILL (132). */
#include <stdio.h>

int main(void)
{
    puts("executing ud2");
    fflush(stdout);
    __asm__ volatile("ud2");
    puts("still alive");
    return 0;
}
