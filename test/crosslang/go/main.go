// The Go contender of the cross-language test (see ../crosslang.test.ts):
// prints "ready", waits for a line on stdin, then takes the lock ROUNDS
// times and prints one JSON line per hold with its fencing token and the
// hold's start and end on CLOCK_MONOTONIC, which every process on the
// machine shares.
//
//	contender ADDRESS LOCK ROUNDS
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
	"golang.org/x/sys/unix"
)

type hold struct {
	Client string `json:"client"`
	Token  int64  `json:"token"`
	// As strings: nanoseconds since boot can exceed what a JSON number
	// carries exactly into JavaScript.
	Start int64 `json:"start,string"`
	End   int64 `json:"end,string"`
}

func monotonicNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func main() {
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "go contender:", err)
		os.Exit(1)
	}
}

func run(address, name, roundsArg string) error {
	rounds, err := strconv.Atoi(roundsArg)
	if err != nil {
		return err
	}
	c, err := msync.New(msync.WithAddress(address))
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start line: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := json.NewEncoder(os.Stdout)
	for range rounds {
		lock, err := c.Lock(ctx, name, msync.WithHolder("go"))
		if err != nil {
			return err
		}
		start := monotonicNanos()
		time.Sleep(2 * time.Millisecond)
		end := monotonicNanos()
		lost := lock.Err()
		if err := lock.Unlock(ctx); err != nil {
			return fmt.Errorf("release of token %d: %w", lock.Token, err)
		}
		if lost != nil {
			return fmt.Errorf("token %d was lost while held: %w", lock.Token, lost)
		}
		if err := out.Encode(hold{Client: "go", Token: lock.Token, Start: start, End: end}); err != nil {
			return err
		}
	}
	return nil
}
