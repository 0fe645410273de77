/*
 * memset/memcpy/strlen/memcmp over 64 MiB at many alignments and lengths:
 * glibc picks its AVX2/AVX-512 variants from CPUID, so this checks the
 * vector state the VM gives the guest. Prints a checksum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE (64UL << 20)

int main(void)
{
    unsigned char *a = malloc(SIZE + 64);
    unsigned char *b = malloc(SIZE + 64);
    if (a == NULL || b == NULL) {
        perror("malloc");
        return 1;
    }
    unsigned long sum = 0;

    memset(a, 'a', SIZE);
    a[SIZE - 1] = '\0';
    sum += strlen((char *)a);

    for (unsigned long i = 0; i < SIZE; i++)
        a[i] = (unsigned char)(i * 131 + (i >> 12)) | 1;  /* never 0 */
    memcpy(b, a, SIZE);
    sum += memcmp(a, b, SIZE) == 0;

    /* Chunks of varying length and misalignment. */
    unsigned long off = 0, len = 1;
    while (off + len + 64 < SIZE) {
        unsigned long shift = len % 61;
        memcpy(b + off + shift, a + off, len);
        sum = sum * 31 + (unsigned long)(memcmp(a + off, b + off + shift, len) == 0);
        a[off + len] = '\0';
        sum += strlen((char *)a + off);
        a[off + len] = 1;
        memset(b + off, (int)(len & 0xff), shift);
        sum += b[off + shift / 2];
        off += len;
        len = len * 3 / 2 + 1;
        if (len > (1UL << 20))
            len = 1;
    }

    /* A difference at the very end must be found. */
    memcpy(b, a, SIZE);
    b[SIZE - 1] ^= 0x80;
    sum += memcmp(a, b, SIZE) < 0 ? 2 : 3;

    for (unsigned long i = 0; i < SIZE; i += 4093)
        sum = sum * 7 + b[i];
    printf("checksum=%lu\n", sum);
    free(a);
    free(b);
    return 0;
}
