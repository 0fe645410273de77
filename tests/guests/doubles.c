/* printf of doubles and long doubles: SSE and x87 state must be right. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    volatile double third = 1.0 / 3.0;
    volatile double big = 6.02214076e23;
    volatile double tiny = 1.602176634e-19;
    volatile long double lthird = 1.0L / 3.0L;
    volatile long double lbig = 1.18973149535723176502e+4932L;

    printf("%f %g %e\n", third, third, third);
    printf("%f %g %e\n", big, big, big);
    printf("%.17g %a\n", tiny, tiny);
    printf("%Lf %Lg %Le\n", lthird, lthird, lthird);
    printf("%.21Lg\n", lbig);
    printf("%.3f %.3f\n", -0.0, 2.5);
    printf("sqrt(2)=%.17g\n", __builtin_sqrt(2.0));

    /* A little arithmetic whose result depends on every step. */
    double x = 1.0;
    long double lx = 1.0L;
    for (int i = 1; i <= 50; i++) {
        x = x * 1.1 + 1.0 / i;
        lx = lx * 1.1L + 1.0L / i;
    }
    printf("x=%.17g lx=%.21Lg\n", x, lx);
    printf("strtod=%.17g\n", strtod("2.718281828459045235360287", NULL));
    return 0;
}
