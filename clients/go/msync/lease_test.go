package msync_test

import (
	"errors"
	"testing"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
)

func TestTryLockLeaseRenewReleaseAndErrorKinds(t *testing.T) {
	ctx := testContext(t)
	d := startDaemon(t)
	c := d.client(t)

	lease, err := c.TryLock(ctx, "report", msync.WithHolder("cron"), msync.WithLeaseDuration(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryLock(ctx, "report"); !errors.Is(err, msync.ErrNotFree) {
		t.Fatalf("a held lock: want ErrNotFree, got %v", err)
	}
	if validFor, err := lease.Renew(ctx); err != nil || validFor <= 0 {
		t.Fatalf("renew: want time to act, got %v, %v", validFor, err)
	}
	info, err := c.GetLock(ctx, "report", msync.Fresh())
	if err != nil || !info.Held || info.Holder != "cron" || info.Token != lease.Token {
		t.Fatalf("GetLock: want held by cron with token %d, got %+v, %v", lease.Token, info, err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); !errors.Is(err, msync.ErrNotHeld) {
		t.Fatalf("a second release: want ErrNotHeld, got %v", err)
	}
	if _, err := c.GetLock(ctx, "Not A Name"); !errors.Is(err, msync.ErrInvalidArgument) {
		t.Fatalf("a bad name: want ErrInvalidArgument, got %v", err)
	}
	leader, err := c.GetLeader(ctx, "nobody-campaigns")
	if err != nil || leader.Leader != "" {
		t.Fatalf("GetLeader of an empty election: want no leader, got %+v, %v", leader, err)
	}
}

func TestAnUnreachableSidecarIsErrUnavailable(t *testing.T) {
	c, err := msync.New(msync.WithAddress("127.0.0.1:1")) // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetLock(testContext(t), "job"); !errors.Is(err, msync.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}
