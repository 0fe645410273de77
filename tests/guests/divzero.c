/* Integer division by zero: #DE, SIGFPE, status 136. */
int main(int argc, char **argv) {
    volatile int zero = argc - 1;
    return 100 / zero;
}
