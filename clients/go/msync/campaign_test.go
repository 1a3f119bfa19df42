package msync_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

// campaignEvents reads a campaign's events as they come, so a test can look
// at them at any moment; ended is closed when they end.
type campaignEvents struct {
	mu     sync.Mutex
	events []msync.Event
	at     []time.Time
	change chan struct{}
	ended  chan struct{}
}

func recordEvents(campaign *msync.Campaign) *campaignEvents {
	r := &campaignEvents{change: make(chan struct{}, 1), ended: make(chan struct{})}
	go func() {
		defer close(r.ended)
		for event := range campaign.Events() {
			r.mu.Lock()
			r.events = append(r.events, event)
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
			select {
			case r.change <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

// await returns the first event of type want, waiting up to within.
func (r *campaignEvents) await(t *testing.T, want msync.EventType, within time.Duration) msync.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		for _, event := range r.events {
			if event.Type == want {
				r.mu.Unlock()
				return event
			}
		}
		r.mu.Unlock()
		select {
		case <-r.change:
		case <-r.ended:
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, event := range r.events {
				if event.Type == want {
					return event
				}
			}
			t.Fatalf("the events ended before %s: %v", want, r.events)
		case <-deadline:
			t.Fatalf("no %s within %v: %v", want, within, r.events)
		}
	}
}

// since is every event that came at or after from.
func (r *campaignEvents) since(from time.Time) []msync.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var events []msync.Event
	for i, event := range r.events {
		if !r.at[i].Before(from) {
			events = append(events, event)
		}
	}
	return events
}

func (r *campaignEvents) all() []msync.Event {
	return r.since(time.Time{})
}

// Defect of issue 18: freeze the sidecar, resign, thaw; the campaign went on
// and reported elected for a new term after the user asked to resign.
func TestNoElectedAfterResignWhileTheSidecarIsFrozen(t *testing.T) {
	ctx := testContext(t)
	d := startDaemon(t, "--lease-duration=2s", "--renew-deadline=1s")
	c := d.client(t)
	campaign, err := c.Campaign(ctx, "ghost", msync.WithCandidate("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer campaign.Close()
	events := recordEvents(campaign)
	elected := events.await(t, msync.Elected, 10*time.Second)

	d.freeze(t)
	resigned := time.Now()
	done := make(chan error, 1)
	go func() { done <- campaign.Resign(ctx) }()
	// Past the term's valid_for (at most the 2 s lease), so the client's own
	// deadline ends the term while the Resign is still unanswered.
	time.Sleep(3 * time.Second)
	d.thaw()
	select {
	case err := <-done:
		t.Logf("Resign on a frozen sidecar returned %v after %v", err, time.Since(resigned))
	case <-time.After(15 * time.Second):
		t.Fatal("Resign did not return within 15 s of the thaw")
	}
	// Room for the sidecar to elect this candidate again, as it did.
	select {
	case <-events.ended:
	case <-time.After(5 * time.Second):
	}

	for _, event := range events.since(resigned) {
		if event.Type == msync.Elected {
			t.Fatalf("elected (term %d) after Resign was called; every event: %v", event.Term, events.all())
		}
	}
	deposed := 0
	for _, event := range events.all() {
		if event.Type == msync.Deposed {
			deposed++
			if event.Term != elected.Term {
				t.Fatalf("deposed from term %d, but only term %d was led: %v", event.Term, elected.Term, events.all())
			}
		}
	}
	if deposed != 1 {
		t.Fatalf("want the term's end reported once, got %d deposed events: %v", deposed, events.all())
	}
	select {
	case <-events.ended:
	default:
		t.Fatalf("the campaign's events did not end after Resign: %v", events.all())
	}
	select {
	case <-elected.Done:
	default:
		t.Fatal("the resigned term's Done channel is still open")
	}
}

// As client-go's OnStartedLeading(ctx): the leader's context is cancelled
// when its term ends, and its cause says why.
func TestTheLeaderContextEndsWithTheTerm(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)
	campaign, err := c.Campaign(ctx, "scheduler", msync.WithCandidate("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer campaign.Close()
	events := recordEvents(campaign)
	elected := events.await(t, msync.Elected, 10*time.Second)
	if elected.Context == nil || elected.Context.Err() != nil {
		t.Fatalf("an elected term has a live context, got %v", elected.Context)
	}
	if err := campaign.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if elected.Context.Err() == nil {
		t.Fatal("the term's context is still live after Resign returned")
	}
	var lost *msync.LostError
	if cause := context.Cause(elected.Context); !errors.As(cause, &lost) || lost.Reason != msync.ReasonReleased {
		t.Fatalf("want the cause to be a *LostError with reason released, got %v", cause)
	}
	select {
	case <-events.ended:
	case <-time.After(5 * time.Second):
		t.Fatalf("the events did not end after Resign: %v", events.all())
	}
	if err := campaign.Resign(ctx); err != nil {
		t.Fatalf("a second Resign: want nil, got %v", err)
	}
}
