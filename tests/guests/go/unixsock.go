// AF_UNIX sockets through Go's net package: a stream server and clients
// in goroutines (nonblocking sockets on the epoll netpoller, accept4,
// SO_ERROR after connect), a datagram exchange, a seqpacket echo, and an
// fd passed with SCM_RIGHTS. Prints deterministic lines.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func stream(dir string) {
	path := filepath.Join(dir, "stream.sock")
	ln, err := net.Listen("unix", path)
	check(err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 4; i++ {
			conn, err := ln.Accept()
			check(err)
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprint(c, strings.ToUpper(line))
				}
			}(conn)
		}
	}()
	var mu sync.Mutex
	var replies []string
	var cw sync.WaitGroup
	for i := 0; i < 4; i++ {
		cw.Add(1)
		go func(i int) {
			defer cw.Done()
			c, err := net.Dial("unix", path)
			check(err)
			defer c.Close()
			r := bufio.NewReader(c)
			for j := 0; j < 3; j++ {
				fmt.Fprintf(c, "client %d line %d\n", i, j)
				line, err := r.ReadString('\n')
				check(err)
				mu.Lock()
				replies = append(replies, strings.TrimSpace(line))
				mu.Unlock()
			}
		}(i)
	}
	cw.Wait()
	wg.Wait()
	ln.Close()
	sort.Strings(replies)
	fmt.Println(len(replies), "replies;", replies[0], "...", replies[len(replies)-1])
	_, err = net.Dial("unix", path)
	fmt.Println("dial after close:", err != nil)
}

func datagrams(dir string) {
	srvAddr := &net.UnixAddr{Name: filepath.Join(dir, "dgram.sock"), Net: "unixgram"}
	srv, err := net.ListenUnixgram("unixgram", srvAddr)
	check(err)
	cliAddr := &net.UnixAddr{Name: filepath.Join(dir, "client.sock"), Net: "unixgram"}
	cli, err := net.ListenUnixgram("unixgram", cliAddr)
	check(err)
	for _, msg := range []string{"one", "two", "three"} {
		_, err := cli.WriteToUnix([]byte(msg), srvAddr)
		check(err)
	}
	buf := make([]byte, 64)
	for i := 0; i < 3; i++ {
		n, from, err := srv.ReadFromUnix(buf)
		check(err)
		fmt.Printf("datagram %q from %s\n", buf[:n], filepath.Base(from.Name))
		_, err = srv.WriteToUnix([]byte(strings.ToUpper(string(buf[:n]))), from)
		check(err)
		n, err = cli.Read(buf)
		check(err)
		fmt.Printf("reply %q\n", buf[:n])
	}
	srv.Close()
	cli.Close()
}

func seqpacket() {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	check(err)
	fa, fb := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	a, err := net.FileConn(fa) // a dup: the originals are closed
	check(err)
	b, err := net.FileConn(fb)
	check(err)
	fa.Close()
	fb.Close()
	done := make(chan bool)
	go func() {
		buf := make([]byte, 100)
		for {
			n, err := b.Read(buf)
			if err != nil || n == 0 {
				done <- true
				return
			}
			b.Write(buf[:n])
		}
	}()
	buf := make([]byte, 100)
	for _, msg := range []string{"packet", "boundaries", "kept"} {
		a.Write([]byte(msg))
		n, err := a.Read(buf)
		check(err)
		fmt.Printf("seqpacket echo %q\n", buf[:n])
	}
	a.Close()
	<-done
	b.Close()
}

func passFd(dir string) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	check(err)
	name := filepath.Join(dir, "passed.txt")
	check(os.WriteFile(name, []byte("contents of a passed file\n"), 0644))
	f, err := os.Open(name)
	check(err)
	check(syscall.Sendmsg(fds[0], []byte("x"), syscall.UnixRights(int(f.Fd())), nil, 0))
	f.Close()
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := syscall.Recvmsg(fds[1], buf, oob, 0)
	check(err)
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	check(err)
	got, err := syscall.ParseUnixRights(&msgs[0])
	check(err)
	data := make([]byte, 100)
	n, err := syscall.Read(got[0], data)
	check(err)
	fmt.Printf("read through passed fd: %q\n", data[:n])
}

func main() {
	dir, err := os.MkdirTemp("", "gounix")
	check(err)
	defer os.RemoveAll(dir)
	stream(dir)
	datagrams(dir)
	seqpacket()
	passFd(dir)
}
