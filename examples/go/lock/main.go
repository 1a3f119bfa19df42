// A singleton job: however many copies run at once, one at a time holds the
// lock and does the work. Every write carries the lock's fencing token, and
// the job stops the moment the lock is lost.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	c, err := msync.New() // $MSYNC_ADDRESS, else 127.0.0.1:13131
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	log.Printf("waiting for lock nightly-report")
	lock, err := c.Lock(ctx, "nightly-report")
	if err != nil {
		log.Fatal(err)
	}
	// Unlock returns once the sidecar has released the lock. Its context is
	// not ctx, which Ctrl-C cancels: the release must still be sent then.
	defer func() {
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			log.Printf("release: %v", err)
		}
	}()
	log.Printf("acquired nightly-report with fencing token %d", lock.Token)

	for step := 1; step <= 3; step++ {
		select {
		case <-lock.Lost():
			log.Fatalf("lost the lock, stopping: %v", lock.Err())
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		// A real job passes the token to the store, which refuses a token
		// older than one it has already seen.
		fmt.Printf("step %d/3 written with fencing token %d\n", step, lock.Token)
	}
	log.Printf("done; releasing nightly-report")
}
