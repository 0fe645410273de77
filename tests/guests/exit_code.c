/* Exits with atoi(argv[1]), saying so on stderr first. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int status = argc > 1 ? atoi(argv[1]) : 0;
    fprintf(stderr, "exiting with %d\n", status);
    exit(status);
}
