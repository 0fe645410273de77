/* A program whose PT_INTERP the tests point at interp_probe: the probe
 * runs instead of main and exits, so this is never reached. */
int main(void) { return 42; }
