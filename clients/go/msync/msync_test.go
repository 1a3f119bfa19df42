package msync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
	"google.golang.org/grpc/codes"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lossReason(t *testing.T, err error) msync.LossReason {
	t.Helper()
	var lost *msync.LostError
	if !errors.As(err, &lost) {
		t.Fatalf("want a *msync.LostError, got %v", err)
	}
	return lost.Reason
}

func TestLockIsExclusiveAndUnlockHandsItOver(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	first, err := c.Lock(ctx, "job", msync.WithHolder("first"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Token <= 0 || first.Holder != "first" || first.ValidFor() <= 0 {
		t.Fatalf("want a positive token, holder first and time left, got %+v (valid for %v)", first, first.ValidFor())
	}

	_, err = c.Lock(ctx, "job", msync.WithWaitTimeout(0))
	var refused *msync.Error
	if !errors.As(err, &refused) || refused.Code != codes.DeadlineExceeded {
		t.Fatalf("a held lock with wait timeout 0: want DeadlineExceeded, got %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, msync.ErrWaitTimeout) {
		t.Fatalf("a wait timeout is context.DeadlineExceeded and msync.ErrWaitTimeout, got %#v", err)
	}

	waiter := make(chan *msync.Lock)
	go func() {
		lock, err := c.Lock(ctx, "job", msync.WithHolder("second"))
		if err != nil {
			t.Error(err)
		}
		waiter <- lock
	}()
	select {
	case <-waiter:
		t.Fatal("the waiter got the lock while it was held")
	case <-time.After(200 * time.Millisecond):
	}

	if err := first.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// Unlock returned: the sidecar has given the lock back already.
	if info, err := c.GetLock(ctx, "job", msync.Fresh()); err != nil || (info.Held && info.Token == first.Token) {
		t.Fatalf("right after Unlock, the lock still shows token %d: %+v, %v", first.Token, info, err)
	}
	<-first.Lost()
	if reason := lossReason(t, first.Err()); reason != msync.ReasonReleased {
		t.Fatalf("after Unlock: want reason released, got %s", reason)
	}
	if err := first.Unlock(ctx); err != nil {
		t.Fatalf("a second Unlock: want nil, got %v", err)
	}
	second := <-waiter
	if second == nil {
		t.FailNow()
	}
	defer second.Unlock(ctx)
	if second.Token <= first.Token {
		t.Fatalf("fencing tokens must grow: first %d, second %d", first.Token, second.Token)
	}
	if second.Err() != nil {
		t.Fatalf("a held lock has no error, got %v", second.Err())
	}
}

// held is what a Lock, a Permit and an RWHold share.
type held interface {
	Lost() <-chan struct{}
	Err() error
	ValidFor() time.Duration
}

func TestLockPermitAndRWHoldLostWhenTheSidecarFreezes(t *testing.T) {
	ctx := testContext(t)
	d := startDaemon(t, "--lease-duration=2s", "--renew-deadline=1s")
	c := d.client(t)
	lock, err := c.Lock(ctx, "frozen")
	if err != nil {
		t.Fatal(err)
	}
	permit, err := c.AcquirePermit(ctx, "frozen", 2)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := c.AcquireRWLock(ctx, "frozen", msync.Shared)
	if err != nil {
		t.Fatal(err)
	}
	holds := map[string]held{"lock": lock, "permit": permit, "read-write hold": reader}

	// A stopped daemon sends neither heartbeats nor `lost`: only the client's
	// own deadline can tell the holder to stop.
	d.freeze(t)
	defer d.thaw()
	stopped := time.Now()
	for what, hold := range holds {
		select {
		case <-hold.Lost():
		case <-time.After(5*time.Second - time.Since(stopped)):
			t.Fatalf("the %s was not reported lost within 5 s of the daemon freezing", what)
		}
		if waited := time.Since(stopped); waited > 2*time.Second {
			t.Fatalf("the %s was lost after %v, later than the 2 s lease", what, waited)
		}
		if reason := lossReason(t, hold.Err()); reason != msync.ReasonHeartbeatTimeout {
			t.Fatalf("the %s: want reason heartbeat-timeout, got %s", what, reason)
		}
		if hold.ValidFor() != 0 {
			t.Fatalf("a lost %s has no time left, got %v", what, hold.ValidFor())
		}
	}
	if err := lock.Unlock(ctx); err != nil {
		t.Fatalf("Unlock of a lost lock: want nil, got %v", err)
	}
	if err := permit.Release(ctx); err != nil {
		t.Fatalf("Release of a lost permit: want nil, got %v", err)
	}
	if err := reader.Release(ctx); err != nil {
		t.Fatalf("Release of a lost read-write hold: want nil, got %v", err)
	}
}

func TestCampaignResignAndObserve(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	observed := make(chan msync.Leader, 16)
	observeCtx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go func() {
		for leader, err := range c.Observe(observeCtx, "scheduler") {
			if err != nil {
				t.Error(err)
				return
			}
			observed <- leader
		}
	}()
	awaitLeader := func(want func(msync.Leader) bool) msync.Leader {
		t.Helper()
		for {
			select {
			case leader := <-observed:
				if want(leader) {
					return leader
				}
			case <-ctx.Done():
				t.Fatal("the observer did not see the expected leader")
			}
		}
	}
	// The campaigns end with ctx, so a missing event ends the loop.
	awaitEvent := func(campaign *msync.Campaign, want msync.EventType) msync.Event {
		t.Helper()
		for event := range campaign.Events() {
			if event.Type == want {
				return event
			}
		}
		t.Fatalf("campaign %s ended before %s: %v", campaign.Candidate, want, campaign.Err())
		return msync.Event{}
	}

	if first := awaitLeader(func(msync.Leader) bool { return true }); first.Leader != "" {
		t.Fatalf("nobody campaigned yet, but the observer saw %+v", first)
	}
	alpha, err := c.Campaign(ctx, "scheduler", msync.WithCandidate("alpha"), msync.WithValue("alpha:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer alpha.Close()
	elected := awaitEvent(alpha, msync.Elected)
	awaitLeader(func(l msync.Leader) bool {
		return l.Leader == "alpha" && l.Value == "alpha:1" && l.Term == elected.Term
	})

	beta, err := c.Campaign(ctx, "scheduler", msync.WithCandidate("beta"), msync.WithValue("beta:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer beta.Close()
	if changed := awaitEvent(beta, msync.LeaderChanged); changed.Leader != "alpha" {
		t.Fatalf("beta should hear that alpha leads, got %+v", changed)
	}

	if err := alpha.Proclaim(ctx, "alpha:2"); err != nil {
		t.Fatal(err)
	}
	awaitLeader(func(l msync.Leader) bool { return l.Value == "alpha:2" })

	if err := alpha.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-elected.Done:
	default:
		t.Fatal("the resigned term's Done channel is still open")
	}
	if deposed := awaitEvent(alpha, msync.Deposed); deposed.Reason != msync.ReasonReleased {
		t.Fatalf("want alpha deposed as released, got %+v", deposed)
	}
	next := awaitEvent(beta, msync.Elected)
	if next.Term <= elected.Term {
		t.Fatalf("terms must grow: alpha %d, beta %d", elected.Term, next.Term)
	}
	awaitLeader(func(l msync.Leader) bool { return l.Leader == "beta" && l.Term == next.Term })
	for range alpha.Events() {
	}
	if alpha.Err() != nil {
		t.Fatalf("a resigned campaign ends without error, got %v", alpha.Err())
	}
	var refused *msync.Error
	if err := alpha.Proclaim(ctx, "late"); !errors.As(err, &refused) || refused.Code != codes.FailedPrecondition {
		t.Fatalf("proclaim after resigning: want FailedPrecondition, got %v", err)
	}
}

func TestBadInputGetsInvalidArgumentNamingTheField(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	var refused *msync.Error
	_, err := c.Lock(ctx, "Not_A_DNS_Name")
	if !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != "name" {
		t.Fatalf("lock with a bad name: want InvalidArgument naming name, got %#v", err)
	}

	campaign, err := c.Campaign(ctx, "scheduler", msync.WithCandidate(""))
	if err != nil {
		t.Fatal(err)
	}
	for range campaign.Events() {
	}
	if !errors.As(campaign.Err(), &refused) || refused.Code != codes.InvalidArgument || refused.Field != "candidate" {
		t.Fatalf("campaign with an empty candidate: want InvalidArgument naming candidate, got %#v", campaign.Err())
	}
}
