// golookup NAME: resolves NAME with Go's own resolver (UDP to the servers of /etc/resolv.conf,
// no libc) and prints the addresses, one per line.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	r := &net.Resolver{PreferGo: true}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
}
