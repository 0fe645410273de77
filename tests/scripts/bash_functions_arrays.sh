# bash: functions, local, recursion, arrays, associative arrays, $(( )).
fact() {
    local n=$1
    if (( n <= 1 )); then echo 1; else echo $(( n * $(fact $(( n - 1 ))) )); fi
}
echo "10! = $(fact 10)"
fib() {
    local -n out=$1
    local a=0 b=1 i
    for (( i = 0; i < $2; i++ )); do
        out+=("$a")
        (( b = a + b, a = b - a ))
    done
}
declare -a seq=()
fib seq 12
echo "fib: ${seq[*]} (${#seq[@]} numbers, last ${seq[-1]})"
arr=(zero "one item" two)
arr[5]=five
echo "indices: ${!arr[@]}"
for item in "${arr[@]}"; do echo "item <$item>"; done
echo "slice: ${arr[@]:1:2}"
declare -A colour=([apple]=red [banana]=yellow [cherry]=red)
for k in $(printf '%s\n' "${!colour[@]}" | /bin/busybox sort); do
    echo "$k is ${colour[$k]}"
done
echo "hex $(( 0xff )) octal $(( 010 )) base2 $(( 2#1011 )) power $(( 3 ** 4 ))"
s="Hello, World"
echo "${s,,} ${s^^} ${s/World/kvmsentry} ${#s} ${s:7}"
[[ $s == Hello* ]] && echo "glob match"
[[ $s =~ ([A-Z])[a-z]+,\ ([A-Z]) ]] && echo "regex: ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
printf -v padded '%05d' 42
echo "padded=$padded"
mapfile -t lines < <(printf 'l1\nl2\nl3\n')
echo "mapfile: ${#lines[@]} ${lines[1]}"
