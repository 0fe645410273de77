/* Allocates 256 MiB, writes one byte in every 4 KiB page, reads them back. */
#include <stdio.h>
#include <stdlib.h>

#define SIZE (256UL << 20)
#define PAGE 4096UL

int main(void)
{
    unsigned char *p = malloc(SIZE);
    if (p == NULL) {
        perror("malloc");
        return 1;
    }
    for (unsigned long off = 0; off < SIZE; off += PAGE)
        p[off] = (unsigned char)(off / PAGE * 7 + 1);
    unsigned long sum = 0;
    for (unsigned long off = 0; off < SIZE; off += PAGE)
        sum += p[off];
    free(p);
    printf("pages=%lu sum=%lu\n", SIZE / PAGE, sum);
    return 0;
}
