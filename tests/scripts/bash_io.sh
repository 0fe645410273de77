# bash: here-docs, here-strings, read, pipelines, PIPESTATUS, process substitution.
BB=/bin/busybox
cat_out=$($BB cat <<EOT
expanded: $((6 * 7))
EOT
)
echo "$cat_out"
$BB cat <<-'EOT'
	tab-stripped, literal: $HOME
	EOT
read -r first rest <<< "alpha beta gamma"
echo "first=$first rest=$rest"
IFS=: read -r -a parts <<< "a:b::d"
echo "parts=${#parts[@]} third=<${parts[2]}> fourth=${parts[3]}"
while IFS=, read -r k v; do
    echo "k=$k v=$v"
done <<EOT
x,1
y,2
EOT
$BB true | $BB false | $BB true
echo "PIPESTATUS=${PIPESTATUS[*]}"
$BB true | (exit 3) | $BB cat
echo "PIPESTATUS=${PIPESTATUS[*]} \$?=$?"
set -o pipefail
echo data | $BB sh -c 'exit 5' | $BB cat
echo "pipefail status $?"
set +o pipefail
diff_out=$($BB diff <(printf 'a\nb\n') <(printf 'a\nc\n') | $BB tail -n 2)
echo "$diff_out"
total=0
while read -r n; do (( total += n )); done < <($BB seq 1 100)
echo "total=$total"
shopt -s lastpipe
$BB seq 1 5 | while read -r n; do last=$n; done
echo "lastpipe last=$last"
exec 3< <(echo "from fd 3")
read -r line <&3
exec 3<&-
echo "$line"
echo "to stderr" >&2
{ echo "group out"; echo "group err" >&2; } 2>&1 | $BB sed 's/^/merged: /'
