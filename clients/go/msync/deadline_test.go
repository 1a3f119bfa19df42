package msync_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

// bounded runs each call at once and checks that it returns within its
// bound; a call that hangs fails the test instead of hanging it.
type bounded struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []string
}

func (b *bounded) run(t *testing.T, name string, within time.Duration, call func() error, check func(error) error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		start := time.Now()
		returned := make(chan error, 1)
		go func() { returned <- call() }()
		select {
		case err := <-returned:
			took := time.Since(start)
			b.mu.Lock()
			b.results = append(b.results, fmt.Sprintf("%s: %v after %v", name, err, took.Round(10*time.Millisecond)))
			b.mu.Unlock()
			if took > within {
				t.Errorf("%s returned after %v, later than %v", name, took, within)
			}
			if problem := check(err); problem != nil {
				t.Errorf("%s: %v", name, problem)
			}
		case <-time.After(within + 5*time.Second):
			t.Errorf("%s did not return within %v", name, within+5*time.Second)
		}
	}()
}

func (b *bounded) wait(t *testing.T) {
	b.wg.Wait()
	for _, result := range b.results {
		t.Log(result)
	}
}

func deadlineExceeded(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("want an error that is context.DeadlineExceeded, got %#v", err)
	}
	return nil
}

// With the sidecar frozen (SIGSTOP), every call returns within its
// deadline: the caller's, else DefaultCallTimeout, else the lock's wait
// timeout (plus its grace) on the client's own clock.
func TestEveryCallIsBoundedOnAFrozenSidecar(t *testing.T) {
	ctx := testContext(t)
	d := startDaemon(t, "--lease-duration=2s", "--renew-deadline=1s")
	c := d.client(t)
	held, err := c.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	lease, err := c.TryLock(ctx, "leased")
	if err != nil {
		t.Fatal(err)
	}
	permit, err := c.AcquirePermit(ctx, "permits", 1)
	if err != nil {
		t.Fatal(err)
	}
	permitLease, err := c.TryAcquirePermit(ctx, "leased-permits", 2)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := c.AcquireRWLock(ctx, "rw", msync.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	rwLease, err := c.TryAcquireRWLock(ctx, "leased-rw", msync.Shared)
	if err != nil {
		t.Fatal(err)
	}
	leading := func(name string) *msync.Campaign {
		campaign, err := c.Campaign(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(campaign.Close)
		for event := range campaign.Events() {
			if event.Type == msync.Elected {
				return campaign
			}
		}
		t.Fatalf("campaign %s ended unelected: %v", name, campaign.Err())
		return nil
	}
	proclaiming, resigning := leading("proclaim"), leading("resign")

	d.freeze(t)
	defer d.thaw()
	noDeadline := context.Background()
	unary := 10*time.Second + 2*time.Second
	var b bounded
	b.run(t, "Lock with a wait timeout of 1 s", 3*time.Second, func() error {
		_, err := c.Lock(noDeadline, "held", msync.WithWaitTimeout(time.Second))
		return err
	}, deadlineExceeded)
	b.run(t, "TryLock", unary, func() error {
		_, err := c.TryLock(noDeadline, "other")
		return err
	}, deadlineExceeded)
	b.run(t, "Renew", unary, func() error {
		_, err := lease.Renew(noDeadline)
		return err
	}, deadlineExceeded)
	b.run(t, "GetLock", unary, func() error {
		_, err := c.GetLock(noDeadline, "held", msync.Fresh())
		return err
	}, deadlineExceeded)
	b.run(t, "GetLeader", unary, func() error {
		_, err := c.GetLeader(noDeadline, "election")
		return err
	}, deadlineExceeded)
	b.run(t, "GetLock with a deadline of 1 s", 2*time.Second, func() error {
		oneSecond, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.GetLock(oneSecond, "held")
		return err
	}, deadlineExceeded)
	b.run(t, "AcquirePermit with a wait timeout of 1 s", 3*time.Second, func() error {
		_, err := c.AcquirePermit(noDeadline, "permits", 1, msync.WithWaitTimeout(time.Second))
		return err
	}, deadlineExceeded)
	b.run(t, "TryAcquirePermit", unary, func() error {
		_, err := c.TryAcquirePermit(noDeadline, "other-permits", 2)
		return err
	}, deadlineExceeded)
	b.run(t, "PermitLease.Renew", unary, func() error {
		_, err := permitLease.Renew(noDeadline)
		return err
	}, deadlineExceeded)
	b.run(t, "GetSemaphore", unary, func() error {
		_, err := c.GetSemaphore(noDeadline, "permits", msync.Fresh())
		return err
	}, deadlineExceeded)
	b.run(t, "AcquireRWLock with a wait timeout of 1 s", 3*time.Second, func() error {
		_, err := c.AcquireRWLock(noDeadline, "rw", msync.Shared, msync.WithWaitTimeout(time.Second))
		return err
	}, deadlineExceeded)
	b.run(t, "TryAcquireRWLock", unary, func() error {
		_, err := c.TryAcquireRWLock(noDeadline, "other-rw", msync.Shared)
		return err
	}, deadlineExceeded)
	b.run(t, "RWLease.Renew", unary, func() error {
		_, err := rwLease.Renew(noDeadline)
		return err
	}, deadlineExceeded)
	b.run(t, "GetRWLock", unary, func() error {
		_, err := c.GetRWLock(noDeadline, "rw", msync.Fresh())
		return err
	}, deadlineExceeded)
	b.run(t, "Proclaim", unary, func() error {
		return proclaiming.Proclaim(noDeadline, "value")
	}, deadlineExceeded)
	// A release or a resignation waits at most until the promise (valid_for,
	// under the 2 s lease) runs out: the hold is over then anyway.
	b.run(t, "Unlock", 3*time.Second, func() error {
		return held.Unlock(noDeadline)
	}, func(err error) error { return err })
	b.run(t, "Permit.Release", 3*time.Second, func() error {
		return permit.Release(noDeadline)
	}, func(err error) error { return err })
	b.run(t, "RWHold.Release", 3*time.Second, func() error {
		return writer.Release(noDeadline)
	}, func(err error) error { return err })
	b.run(t, "Resign", 3*time.Second, func() error {
		return resigning.Resign(noDeadline)
	}, func(err error) error { return err })
	b.wait(t)
}

// A per-call deadline that passes while the promise still runs is an error:
// the release was not confirmed.
func TestUnlockUnansweredWithinItsDeadlineIsDeadlineExceeded(t *testing.T) {
	ctx := testContext(t)
	d := startDaemon(t, "--lease-duration=5s", "--renew-deadline=4s")
	c := d.client(t)
	lock, err := c.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	permit, err := c.AcquirePermit(ctx, "held", 2)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := c.AcquireRWLock(ctx, "held", msync.Shared)
	if err != nil {
		t.Fatal(err)
	}
	d.freeze(t)
	defer d.thaw()
	for what, release := range map[string]func(context.Context) error{"Unlock": lock.Unlock, "Permit.Release": permit.Release, "RWHold.Release": reader.Release} {
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		err = release(short)
		cancel()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("%s returned after %v, with a deadline of 500 ms", what, took)
		}
		if problem := deadlineExceeded(err); problem != nil {
			t.Fatalf("%s: %v", what, problem)
		}
	}
	for what, hold := range map[string]held{"lock": lock, "permit": permit, "read-write hold": reader} {
		select {
		case <-hold.Lost():
		default:
			t.Fatalf("the %s's Lost is still open after its release", what)
		}
	}
}
