/* SIMD as libc and compilers use it: CPUID feature bits, the OS-enabled
 * state in XCR0, and AVX2 / AVX-512 arithmetic when the CPU has them.
 * Issue 2: "CR4 and XCR0 so SSE/AVX/AVX2/AVX-512 user code works". */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

__attribute__((target("avx2"))) static int avx2_sum(void) {
    int out[8], sum = 0;
    __attribute__((aligned(32))) int a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    __asm__ volatile("vmovdqa %1, %%ymm0\n\tvpaddd %%ymm0, %%ymm0, %%ymm0\n\tvmovdqu %%ymm0, %0"
                     : "=m"(out) : "m"(a) : "xmm0");
    for (int i = 0; i < 8; i++) sum += out[i];
    return sum;
}

__attribute__((target("avx512f"))) static int avx512_sum(void) {
    int out[16], sum = 0;
    __attribute__((aligned(64))) int a[16];
    for (int i = 0; i < 16; i++) a[i] = i;
    __asm__ volatile("vmovdqa32 %1, %%zmm1\n\tvpaddd %%zmm1, %%zmm1, %%zmm1\n\tvmovdqu32 %%zmm1, %0"
                     : "=m"(out) : "m"(a) : "xmm1");
    for (int i = 0; i < 16; i++) sum += out[i];
    return sum;
}

int main(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    int sse42 = !!(c & bit_SSE4_2), osxsave = !!(c & bit_OSXSAVE), avx = !!(c & bit_AVX);
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = !!(b & bit_AVX2), avx512f = !!(b & bit_AVX512F);
    unsigned xcr0 = 0;
    if (osxsave) {
        unsigned hi;
        __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
    }
    printf("sse4.2 %d osxsave %d avx %d avx2 %d avx512f %d\n", sse42, osxsave, avx, avx2, avx512f);
    printf("xcr0 x87/sse/avx %#x avx-512 %#x\n", xcr0 & 0x7, xcr0 & 0xe0);
    if (avx2 && (xcr0 & 0x6) == 0x6) printf("avx2 sum %d\n", avx2_sum());
    if (avx512f && (xcr0 & 0xe6) == 0xe6) printf("avx512 sum %d\n", avx512_sum());
    char buf[1 << 16];
    memset(buf, 'x', sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    printf("strlen %zu\n", strlen(buf));
    return 0;
}
