# trap + kill -USR1 $$, trap on EXIT (POSIX sh).
trap 'echo "got USR1"' USR1
trap 'echo "exit trap, status $?"' EXIT
echo "before kill"
kill -USR1 $$
echo "after kill"
kill -USR1 $$
kill -USR1 $$
echo "three signals handled"
trap - USR1
trap '' USR2
kill -USR2 $$
echo "USR2 ignored"
# A trap in a subshell, signalled by the subshell itself.
( trap 'echo "subshell got TERM"; exit 9' TERM; /bin/busybox sh -c 'kill -TERM $PPID'; echo "after kill in subshell" )
echo "subshell status $?"
exit 5
