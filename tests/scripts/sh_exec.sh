# exec, $$/$PPID consistency, nested shells, exit statuses of signals.
BB=/bin/busybox
$BB sh -c 'exit 42'
echo "nested status $?"
$BB sh -c 'kill -TERM $$'
echo "killed by TERM: $?"
$BB sh -c 'kill -KILL $$'
echo "killed by KILL: $?"
inner=$($BB sh -c 'echo $PPID')
[ "$inner" = "$$" ] && echo "child sees our pid as PPID"
BB=$BB $BB sh -c 'exec $BB echo "exec replaced the shell"'
$BB env -i FOO=bar $BB env
/nonexistent/command 2>/dev/null
echo "missing command status $?"
