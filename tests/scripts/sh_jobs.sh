# Background jobs, wait, sleep 0.2, exit status 7.
BB=/bin/busybox
$BB sleep 0.2
echo "slept"
( $BB sleep 0.2; exit 3 ) &
p1=$!
( exit 4 ) &
p2=$!
wait $p1
echo "first job status $?"
wait $p2
echo "second job status $?"
for n in 1 2 3 4; do
    ( $BB sleep 0.$n; echo "job $n done" ) > /dev/null &
done
wait
echo "all jobs done"
out=$( (echo from background) & wait )
echo "captured: $out"
$BB sleep 10 &
victim=$!
$BB sleep 0.3
kill -TERM $victim
# Reaped while the shell waits for this sleep: ash prints "Terminated"
# only when the wait builtin itself reaps it, which is a race.
$BB sleep 0.3
wait $victim
echo "killed job status $?"
sleep 0.2
echo "builtin-or-applet sleep done"
exit 7
