// Leader election: every copy campaigns; the leader works for a few seconds
// and then resigns, so another copy is elected at once. Run two or three.
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

	c, err := msync.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	me := fmt.Sprintf("go-%d", os.Getpid())
	campaign, err := c.Campaign(ctx, "scheduler", msync.WithCandidate(me), msync.WithValue(me+":8080"))
	if err != nil {
		log.Fatal(err)
	}
	defer campaign.Close()

	for event := range campaign.Events() {
		switch event.Type {
		case msync.LeaderChanged:
			log.Printf("%s follows %q (term %d, value %q)", me, event.Leader, event.Term, event.Value)
		case msync.Deposed:
			log.Printf("%s no longer leads term %d: %s", me, event.Term, event.Reason)
		case msync.Elected:
			log.Printf("%s leads, term %d", me, event.Term)
			// As client-go's OnStartedLeading(ctx): event.Context is cancelled
			// the moment this term ends, for whatever reason.
			if lead(event.Context) {
				// Resign ends the campaign: the events end after its Deposed.
				if err := campaign.Resign(context.WithoutCancel(ctx)); err != nil {
					log.Printf("resign: %v", err)
				}
			}
		}
	}
	if err := campaign.Err(); err != nil {
		log.Fatal(err)
	}
}

// lead works for three seconds, unless the term ends first; it reports
// whether it finished, and then this copy resigns.
func lead(ctx context.Context) bool {
	select {
	case <-ctx.Done(): // deposed: the next event says why
		log.Printf("stopped leading: %v", context.Cause(ctx))
		return false
	case <-time.After(3 * time.Second):
		return true
	}
}
