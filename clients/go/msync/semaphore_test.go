package msync_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
	"google.golang.org/grpc/codes"
)

func TestSemaphoreGrantsNPermitsAndAWaiterGetsOneOnRelease(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	first, err := c.AcquirePermit(ctx, "export", 2, msync.WithHolder("first"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.AcquirePermit(ctx, "export", 2, msync.WithHolder("second"))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Release(ctx)
	for _, p := range []*msync.Permit{first, second} {
		if p.Token <= 0 || p.HoldID == "" || p.Permits != 2 || p.ValidFor() <= 0 || p.Err() != nil {
			t.Fatalf("want a held permit of 2 with a token, a hold and time left, got %+v (valid for %v, err %v)", p, p.ValidFor(), p.Err())
		}
	}
	if first.Holder != "first" || second.Holder != "second" || first.HoldID == second.HoldID || second.Token <= first.Token {
		t.Fatalf("want two holds with their holders and growing tokens, got %+v and %+v", first, second)
	}

	_, err = c.AcquirePermit(ctx, "export", 2, msync.WithWaitTimeout(0))
	if !errors.Is(err, msync.ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no permit free with wait timeout 0: want ErrWaitTimeout, got %#v", err)
	}

	waiter := make(chan *msync.Permit)
	go func() {
		permit, err := c.AcquirePermit(ctx, "export", 2, msync.WithHolder("third"))
		if err != nil {
			t.Error(err)
		}
		waiter <- permit
	}()
	select {
	case <-waiter:
		t.Fatal("a third holder got a permit while both were held")
	case <-time.After(200 * time.Millisecond):
	}

	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Release returned: the sidecar has given the permit back already.
	if info, err := c.GetSemaphore(ctx, "export", msync.Fresh()); err != nil || slices.Contains(holderTokens(info.Holders), first.Token) {
		t.Fatalf("right after Release, the semaphore still shows token %d: %+v, %v", first.Token, info, err)
	}
	<-first.Lost()
	if reason := lossReason(t, first.Err()); reason != msync.ReasonReleased {
		t.Fatalf("after Release: want reason released, got %s", reason)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatalf("a second Release: want nil, got %v", err)
	}
	third := <-waiter
	if third == nil {
		t.FailNow()
	}
	defer third.Release(ctx)
	if third.Token <= second.Token || third.Holder != "third" {
		t.Fatalf("want the waiter to hold with a newer token than %d, got %+v", second.Token, third)
	}
	info, err := c.GetSemaphore(ctx, "export", msync.Fresh())
	if err != nil {
		t.Fatal(err)
	}
	if got := holderNames(info.Holders); info.Permits != 2 || !slices.Equal(got, []string{"second", "third"}) || info.Token != third.Token {
		t.Fatalf("want 2 permits held by second and third, last token %d, got %+v", third.Token, info)
	}
	// Releasing a stream's hold ends the stream without a loss.
	time.Sleep(300 * time.Millisecond)
	if reason := lossReason(t, first.Err()); reason != msync.ReasonReleased {
		t.Fatalf("after the sidecar ended the released stream: want reason released, got %s", reason)
	}
}

func TestTryAcquirePermitListsHoldersWhenFullAndRenewsAndReleasesByHold(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	a, err := c.TryAcquirePermit(ctx, "report", 2, msync.WithHolder("cron-a"), msync.WithLeaseDuration(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.TryAcquirePermit(ctx, "report", 2, msync.WithHolder("cron-b"), msync.WithLeaseDuration(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a.HoldID == "" || a.HoldID == b.HoldID || b.Token <= a.Token || a.Permits != 2 || a.ValidFor() <= 0 {
		t.Fatalf("want two holds of 2 permits with growing tokens, got %+v and %+v", a, b)
	}

	_, err = c.TryAcquirePermit(ctx, "report", 2, msync.WithHolder("cron-c"))
	var full *msync.NoPermitFreeError
	if !errors.As(err, &full) || !errors.Is(err, msync.ErrNotFree) {
		t.Fatalf("every permit held: want a *NoPermitFreeError that is ErrNotFree, got %#v", err)
	}
	if got := holderNames(full.Holders); !slices.Equal(got, []string{"cron-a", "cron-b"}) {
		t.Fatalf("want the holders cron-a and cron-b, got %+v", full.Holders)
	}
	for _, holder := range full.Holders {
		if want := map[string]int64{"cron-a": a.Token, "cron-b": b.Token}[holder.Holder]; holder.Token != want || holder.Remaining <= 0 {
			t.Fatalf("holder %s: want token %d and time left, got %+v", holder.Holder, want, holder)
		}
	}

	before := a.ValidFor()
	if validFor, err := a.Renew(ctx, 10*time.Second); err != nil || validFor < before+time.Second || a.ValidFor() < before+time.Second {
		t.Fatalf("renew with a 10 s lease instead of 5 s: want longer to act than %v, got %v (ValidFor %v), %v", before, validFor, a.ValidFor(), err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost is still open after Release")
	}
	if err := a.Release(ctx); !errors.Is(err, msync.ErrNotHeld) {
		t.Fatalf("a second release: want ErrNotHeld, got %v", err)
	}
	var refused *msync.Error
	if _, err := a.Renew(ctx); !errors.Is(err, msync.ErrNotHeld) || !errors.As(err, &refused) || refused.Field != "hold_id" {
		t.Fatalf("renewing a released hold: want ErrNotHeld naming hold_id, got %#v", err)
	}

	c2, err := c.TryAcquirePermit(ctx, "report", 2, msync.WithHolder("cron-c"))
	if err != nil {
		t.Fatalf("a permit was released: want it, got %v", err)
	}
	defer c2.Release(ctx)
	info, err := c.GetSemaphore(ctx, "report", msync.Fresh())
	if got := holderNames(info.Holders); err != nil || info.Permits != 2 || !slices.Equal(got, []string{"cron-b", "cron-c"}) || info.Token != c2.Token {
		t.Fatalf("GetSemaphore: want 2 permits held by cron-b and cron-c, last token %d, got %+v, %v", c2.Token, info, err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}

	never, err := c.GetSemaphore(ctx, "never-used")
	if err != nil || never.Permits != 0 || len(never.Holders) != 0 || never.Token != 0 {
		t.Fatalf("a semaphore never used: want 0 permits, no holders, token 0, got %+v, %v", never, err)
	}
}

func TestPermitsMismatchIsItsOwnErrorKind(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	lease, err := c.TryAcquirePermit(ctx, "export", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	check := func(what string, err error) {
		t.Helper()
		var refused *msync.Error
		if !errors.Is(err, msync.ErrPermitsMismatch) || !errors.As(err, &refused) {
			t.Fatalf("%s: want ErrPermitsMismatch, got %#v", what, err)
		}
		if refused.Code != codes.FailedPrecondition || refused.Reason != "PERMITS_MISMATCH" || refused.Field != "permits" {
			t.Fatalf("%s: want FAILED_PRECONDITION, reason PERMITS_MISMATCH, naming permits, got %#v", what, refused)
		}
		if errors.Is(err, msync.ErrNotHeld) || errors.Is(err, msync.ErrNotFree) {
			t.Fatalf("%s: a mismatch is neither ErrNotHeld nor ErrNotFree", what)
		}
	}
	_, err = c.TryAcquirePermit(ctx, "export", 5)
	check("TryAcquirePermit with 5 of 3", err)
	_, err = c.AcquirePermit(ctx, "export", 5)
	check("AcquirePermit with 5 of 3", err)

	info, err := c.GetSemaphore(ctx, "export", msync.Fresh())
	if err != nil || info.Permits != 3 || len(info.Holders) != 1 {
		t.Fatalf("after the refusals: want 3 permits and the one hold, got %+v, %v", info, err)
	}

	for _, permits := range []int{0, 33, 1 << 40} {
		var refused *msync.Error
		if _, err := c.AcquirePermit(ctx, "other", permits); !errors.Is(err, msync.ErrInvalidArgument) || !errors.As(err, &refused) || refused.Field != "permits" {
			t.Fatalf("%d permits: want ErrInvalidArgument naming permits, got %#v", permits, err)
		}
	}
}

func holderTokens(holders []msync.PermitHolder) []int64 {
	tokens := make([]int64, len(holders))
	for i, holder := range holders {
		tokens[i] = holder.Token
	}
	return tokens
}

func holderNames(holders []msync.PermitHolder) []string {
	names := make([]string, len(holders))
	for i, holder := range holders {
		names[i] = holder.Holder
	}
	slices.Sort(names)
	return names
}
