// Goroutines over OS threads, channels, a map, time.Sleep: the Go runtime
// (clone threads, futex, signals for preemption, epoll, mmap arenas), timers
// and os/exec of busybox.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	results := make([]int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 3000000; j++ {
				s += j % (i + 3)
			}
			results[i] = s
		}(i)
	}
	wg.Wait()
	ch := make(chan string, 3)
	go func() { ch <- "a"; ch <- "b"; ch <- "c"; close(ch) }()
	var parts []string
	for p := range ch {
		parts = append(parts, p)
	}
	sort.Ints(results)
	time.Sleep(50 * time.Millisecond)
	fmt.Println(results, strings.Join(parts, ","), len(os.Args))
	m := map[string]int{}
	for i := 0; i < 100000; i++ {
		m[fmt.Sprint(i%1000)]++
	}
	fmt.Println(len(m))
	timer := time.NewTimer(20 * time.Millisecond)
	ticker := time.NewTicker(5 * time.Millisecond)
	ticks := 0
	for done := false; !done; {
		select {
		case <-ticker.C:
			ticks++
		case <-timer.C:
			done = true
		}
	}
	ticker.Stop()
	fmt.Println("timer fired, ticked:", ticks > 0)
	out, err := exec.Command("/bin/busybox", "echo", "from a child").Output()
	fmt.Printf("exec: %q %v\n", out, err)
}
