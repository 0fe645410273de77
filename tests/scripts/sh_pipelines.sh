# Pipelines, subshells and command substitution (POSIX sh).
BB=/bin/busybox
echo "banana apple cherry" | $BB tr ' ' '\n' | $BB sort | $BB tr a-z A-Z
printf 'x\ny\nz\n' | $BB wc -l
n=$(echo one two three | $BB wc -w)
echo "words: $n"
nested=$(echo "outer $(echo inner $(echo innermost))")
echo "$nested"
(echo "in a subshell"; x=changed; exit 3)
echo "subshell status $?"
x=kept
(x=changed)
echo "x is $x"
{ echo grouped one; echo grouped two; } | $BB cat -n
echo "last of pipeline" | $BB false | $BB true
echo "pipeline status $?"
echo foo | $BB grep -q bar
echo "grep status $?"
! $BB false
echo "negated $?"
$BB true && echo "and ran" || echo "or ran"
$BB false && echo "and ran" || echo "or ran"
# A long pipeline: 6 processes.
$BB seq 1 2000 | $BB cat | $BB grep 7 | $BB sort -r | $BB head -n 3 | $BB tr '\n' ' '
echo
# More than a pipe buffer through a pipeline.
$BB seq 1 50000 | $BB md5sum
