# xargs and busybox timeout.
BB=/bin/busybox
printf 'a\nb\nc\n' | $BB xargs $BB echo
printf '1 2 3 4 5\n' | $BB xargs -n 2 $BB echo pair:
printf 'one\ntwo\n' | $BB xargs -I{} $BB echo "[{}]"
$BB seq 1 300 | $BB xargs $BB echo | $BB wc -l
$BB timeout 1 $BB sleep 5
echo "timeout status $?"
$BB timeout 5 $BB true
echo "timeout (no expiry) status $?"
$BB timeout 5 $BB sh -c 'exit 6'
echo "timeout (child status) $?"
