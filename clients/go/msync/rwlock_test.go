package msync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
	"google.golang.org/grpc/codes"
)

// acquireLater starts AcquireRWLock in the background; the channel gets the
// hold, or nil after reporting the error.
func acquireLater(t *testing.T, ctx context.Context, c *msync.Client, name string, mode msync.Mode, holder string) <-chan *msync.RWHold {
	granted := make(chan *msync.RWHold, 1)
	go func() {
		hold, err := c.AcquireRWLock(ctx, name, mode, msync.WithHolder(holder))
		if err != nil {
			t.Errorf("%s: %v", holder, err)
		}
		granted <- hold
	}()
	return granted
}

func notGranted(t *testing.T, granted <-chan *msync.RWHold, what string) {
	t.Helper()
	select {
	case hold := <-granted:
		t.Fatalf("%s was granted while it should wait: %+v", what, hold)
	case <-time.After(300 * time.Millisecond):
	}
}

func granted(t *testing.T, granted <-chan *msync.RWHold, what string) *msync.RWHold {
	t.Helper()
	select {
	case hold := <-granted:
		if hold == nil {
			t.FailNow()
		}
		return hold
	case <-time.After(5 * time.Second):
		t.Fatalf("%s was not granted within 5 s", what)
		return nil
	}
}

func TestRWLockReadersShareAWriterWaitsForBothAndHoldsAloneWithAGreaterToken(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	readers := make([]*msync.RWHold, 2)
	for i, holder := range []string{"reader-a", "reader-b"} {
		hold, err := c.AcquireRWLock(ctx, "catalog", msync.Shared, msync.WithHolder(holder))
		if err != nil {
			t.Fatal(err)
		}
		if hold.Mode != msync.Shared || hold.Token != 0 || hold.Holder != holder || hold.HoldID == "" || hold.ValidFor() <= 0 || hold.Err() != nil {
			t.Fatalf("before any writer: want a shared hold with token 0, a hold id and time left, got %+v (valid for %v, err %v)", hold, hold.ValidFor(), hold.Err())
		}
		readers[i] = hold
	}
	if readers[0].HoldID == readers[1].HoldID {
		t.Fatalf("two shared holds share the hold id %q", readers[0].HoldID)
	}
	info, err := c.GetRWLock(ctx, "catalog", msync.Fresh())
	if err != nil || !info.Held || info.Mode != msync.Shared || info.SharedHolds() != 2 || info.Holder != "" || info.Token != 0 {
		t.Fatalf("GetRWLock: want it held shared by 2 readers, no writer, token 0, got %+v, %v", info, err)
	}

	_, err = c.AcquireRWLock(ctx, "catalog", msync.Exclusive, msync.WithWaitTimeout(0))
	if !errors.Is(err, msync.ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("readers hold, wait timeout 0: want ErrWaitTimeout, got %#v", err)
	}

	writer := acquireLater(t, ctx, c, "catalog", msync.Exclusive, "writer")
	notGranted(t, writer, "a writer while two readers hold")
	if err := readers[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	notGranted(t, writer, "a writer while one reader holds")
	if err := readers[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
	w := granted(t, writer, "the writer once both readers released")
	if w.Mode != msync.Exclusive || w.Token <= 0 || w.Holder != "writer" {
		t.Fatalf("want an exclusive hold with a token above 0, got %+v", w)
	}
	for _, reader := range readers {
		<-reader.Lost()
		if reason := lossReason(t, reader.Err()); reason != msync.ReasonReleased {
			t.Fatalf("after Release: want reason released, got %s", reason)
		}
		if err := reader.Release(ctx); err != nil {
			t.Fatalf("a second Release: want nil, got %v", err)
		}
	}
	info, err = c.GetRWLock(ctx, "catalog", msync.Fresh())
	if err != nil || info.Mode != msync.Exclusive || info.Holder != "writer" || info.Token != w.Token || info.SharedHolds() != 0 {
		t.Fatalf("GetRWLock: want it held exclusive by writer with token %d, got %+v, %v", w.Token, info, err)
	}

	late := acquireLater(t, ctx, c, "catalog", msync.Shared, "late-reader")
	notGranted(t, late, "a reader while the writer holds")
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Release returned: the sidecar has given the exclusive hold back already.
	if info, err := c.GetRWLock(ctx, "catalog", msync.Fresh()); err != nil || info.Mode == msync.Exclusive {
		t.Fatalf("right after the writer's Release, the lock is still held exclusive: %+v, %v", info, err)
	}
	r := granted(t, late, "the reader once the writer released")
	defer r.Release(ctx)
	if r.Mode != msync.Shared || r.Token != w.Token {
		t.Fatalf("a reader after the writer: want a shared hold with the writer's token %d, got %+v", w.Token, r)
	}
}

func TestTryAcquireRWLockIsRefusedWithTheStateAndRenewsAndReleasesByHold(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	w, err := c.TryAcquireRWLock(ctx, "report", msync.Exclusive, msync.WithHolder("writer"), msync.WithLeaseDuration(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w.Mode != msync.Exclusive || w.Token <= 0 || w.HoldID == "" || w.ValidFor() <= 0 {
		t.Fatalf("want an exclusive lease with a token and time left, got %+v", w)
	}
	_, err = c.TryAcquireRWLock(ctx, "report", msync.Shared, msync.WithHolder("reader"))
	var busy *msync.RWLockNotFreeError
	if !errors.As(err, &busy) || !errors.Is(err, msync.ErrNotFree) {
		t.Fatalf("a writer holds: want an *RWLockNotFreeError that is ErrNotFree, got %#v", err)
	}
	if busy.Mode != msync.Shared || busy.State.Mode != msync.Exclusive || busy.State.Holder != "writer" || busy.State.Token != w.Token {
		t.Fatalf("want the shared attempt refused with the writer's state (token %d), got %+v", w.Token, busy)
	}
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}

	var reads []*msync.RWLease
	for range 2 {
		r, err := c.TryAcquireRWLock(ctx, "report", msync.Shared, msync.WithHolder("reader"), msync.WithLeaseDuration(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode != msync.Shared || r.Token != w.Token {
			t.Fatalf("want a shared lease with the last writer's token %d, got %+v", w.Token, r)
		}
		reads = append(reads, r)
	}
	if reads[0].HoldID == reads[1].HoldID {
		t.Fatalf("two shared holds of one holder share the hold id %q", reads[0].HoldID)
	}
	_, err = c.TryAcquireRWLock(ctx, "report", msync.Exclusive)
	if !errors.As(err, &busy) || busy.State.Mode != msync.Shared || busy.State.SharedHolds() != 2 {
		t.Fatalf("readers hold: want the exclusive attempt refused with 2 shared holds, got %#v", err)
	}

	before := reads[0].ValidFor()
	if validFor, err := reads[0].Renew(ctx, 10*time.Second); err != nil || validFor < before+time.Second {
		t.Fatalf("renew with a 10 s lease instead of 5 s: want longer to act than %v, got %v, %v", before, validFor, err)
	}
	if err := reads[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reads[0].Lost():
	default:
		t.Fatal("Lost is still open after Release")
	}
	info, err := c.GetRWLock(ctx, "report", msync.Fresh())
	if err != nil || info.Mode != msync.Shared || info.SharedHolds() != 1 {
		t.Fatalf("after one of two shared holds was released: want 1 left, got %+v, %v", info, err)
	}
	var refused *msync.Error
	if _, err := reads[0].Renew(ctx); !errors.Is(err, msync.ErrNotHeld) || !errors.As(err, &refused) || refused.Field != "hold_id" {
		t.Fatalf("renewing a released hold: want ErrNotHeld naming hold_id, got %#v", err)
	}
	if err := reads[0].Release(ctx); !errors.Is(err, msync.ErrNotHeld) {
		t.Fatalf("a second release: want ErrNotHeld, got %v", err)
	}
	if _, err := reads[1].Renew(ctx); err != nil {
		t.Fatalf("the other hold of the same holder: want it renewed, got %v", err)
	}
	if err := reads[1].Release(ctx); err != nil {
		t.Fatal(err)
	}

	never, err := c.GetRWLock(ctx, "never-used")
	if err != nil || never.Held || never.Mode != "" || never.Token != 0 || len(never.Readers) != 0 {
		t.Fatalf("a read-write lock never used: want it not held, token 0, got %+v, %v", never, err)
	}
}

func TestRWLockBadInputNamesTheFieldAndTheZeroModeIsExclusive(t *testing.T) {
	ctx := testContext(t)
	c := startDaemon(t).client(t)

	check := func(what, field string, err error) {
		t.Helper()
		var refused *msync.Error
		if !errors.Is(err, msync.ErrInvalidArgument) || !errors.As(err, &refused) || refused.Code != codes.InvalidArgument || refused.Field != field {
			t.Fatalf("%s: want ErrInvalidArgument naming %s, got %#v", what, field, err)
		}
	}
	_, err := c.AcquireRWLock(ctx, "Not A Name", msync.Shared)
	check("AcquireRWLock with a bad name", "name", err)
	_, err = c.TryAcquireRWLock(ctx, "Not A Name", msync.Shared)
	check("TryAcquireRWLock with a bad name", "name", err)
	_, err = c.AcquireRWLock(ctx, "catalog", msync.Mode("read"))
	check(`AcquireRWLock in mode "read"`, "mode", err)
	_, err = c.TryAcquireRWLock(ctx, "catalog", msync.Mode("Shared"))
	check(`TryAcquireRWLock in mode "Shared"`, "mode", err)
	_, err = c.AcquireRWLock(ctx, "catalog", msync.Shared, msync.WithLeaseDuration(1500*time.Millisecond))
	check("AcquireRWLock with a lease of 1.5 s", "lease_duration", err)

	hold, err := c.AcquireRWLock(ctx, "catalog", "")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release(ctx)
	if hold.Mode != msync.Exclusive || hold.Token <= 0 {
		t.Fatalf("the zero Mode: want an exclusive hold, got %+v", hold)
	}
}
