/* A breakpoint with no debugger: SIGTRAP, status 133. */
int main(void) {
    __asm__ volatile("int3");
    return 0;
}
