# bash: traps, kill -USR1 $$, background jobs, wait, wait -n, subshell statuses.
BB=/bin/busybox
# Before any trap is set, so that a job signalled before its exec has
# no trap to run.
$BB sleep 10 &
victim=$!
$BB sleep 0.3
kill -TERM $victim
wait $victim
echo "killed job: $?"
trap 'echo "EXIT trap (status $?)"' EXIT
trap 'echo "USR1 trap"; usr1=$((usr1 + 1))' USR1
usr1=0
kill -USR1 $$
kill -USR1 $$
echo "usr1=$usr1"
trap 'echo "ERR trap at line $LINENO"' ERR
$BB false
trap - ERR
( exit 11 ) &
p=$!
wait $p
echo "wait \$p: $?"
$BB sleep 2 && exit 21 &  # long enough for the next fork even on a loaded machine
slow=$!
( exit 22 ) &
fast=$!
wait -n
echo "wait -n first: $?"
wait -n
echo "wait -n second: $?"
wait -n
echo "wait -n with no children: $?"
for i in 1 2 3; do ( $BB sleep 0.$i; exit $i ) & done
sum=0
for i in 1 2 3; do wait -n; sum=$((sum + $?)); done
echo "sum of statuses: $sum"
sleep_pid_status=$( { $BB sleep 0.2; echo "slept"; } )
echo "$sleep_pid_status"
coproc UPPER { $BB tr a-z A-Z; }
echo "coprocess input" >&"${UPPER[1]}"
exec {UPPER[1]}>&-
read -r reply <&"${UPPER[0]}"
wait $UPPER_PID
echo "coproc: $reply"
f() { return 3; }
f || echo "f returned $?"
exit 7
