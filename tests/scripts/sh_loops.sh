# for, while read, here-docs, $(( )), case, functions (POSIX sh).
for word in alpha beta gamma; do
    echo "for: $word"
done
i=0
while [ $i -lt 5 ]; do
    i=$((i + 1))
done
echo "i=$i sum=$((1 + 2 * 3)) mod=$((17 % 5)) shift=$((1 << 10))"
while read -r name value; do
    echo "read name=$name value=$value"
done <<END
first 1
second two words
third
END
printf 'p1\np2\np3\n' | while read -r line; do echo "piped $line"; done
count=0
for f in $(/bin/busybox seq 1 10); do
    count=$((count + f))
done
echo "count=$count"
greet() {
    local who="$1"
    echo "hello, $who ($# args)"
    return 4
}
greet world extra
echo "greet returned $?"
case "kvmsentry" in
    kvm*) echo "case matched kvm*" ;;
    *) echo "case default" ;;
esac
cat_heredoc=$(/bin/busybox cat <<'EOT'
literal $HOME and `not run`
EOT
)
echo "$cat_heredoc"
read -r a b <<EOT
left right
EOT
echo "a=$a b=$b"
set -- p q r
echo "positional: $# $1 $3"
shift
echo "after shift: $*"
