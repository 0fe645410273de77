# set -e: a failing command in a condition does not exit, a bare one does.
BB=/bin/busybox
set -e
if $BB false; then echo "not here"; else echo "condition failure ignored"; fi
$BB false || echo "|| failure ignored"
! $BB true
echo "negation ignored"
x=$($BB echo ok)
echo "x=$x"
# set -e is ignored inside the left side of ||, as POSIX says.
( set -e; $BB false; echo "set -e ignored left of ||" ) || echo "not printed"
set +e
( set -e; $BB false; echo "not printed" )
echo "subshell with set -e: $?"
set -e
echo "before the failure"
$BB sh -c 'exit 13'
echo "never printed"
