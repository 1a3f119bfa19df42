package msync

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

func TestFenceAnnotationKey(t *testing.T) {
	key, err := FenceAnnotationKey("orders")
	if err != nil || key != "fence.sync.metaparticle.io/orders" {
		t.Fatalf("FenceAnnotationKey(orders) = %q, %v", key, err)
	}
	long := strings.Repeat("a", 70)
	key, err = FenceAnnotationKey(long)
	// The same name in every client shortens to the same key (TypeScript, Python, Java, Rust check this value too).
	if err != nil || key != "fence.sync.metaparticle.io/"+strings.Repeat("a", 46)+"-6bd5e5034855a112" {
		t.Fatalf("FenceAnnotationKey(70 a) = %q, %v", key, err)
	}
	if _, err := FenceAnnotationKey("Bad Name"); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "name:") {
		t.Fatalf("FenceAnnotationKey(Bad Name) error = %v, want ErrInvalidArgument naming name", err)
	}
}

func TestStampFence(t *testing.T) {
	got, err := StampFence(nil, "orders", 7)
	if err != nil || len(got) != 1 || got["fence.sync.metaparticle.io/orders"] != "7" {
		t.Fatalf("StampFence(nil) = %v, %v", got, err)
	}
	kept := map[string]string{"other": "x", "fence.sync.metaparticle.io/orders": "3"}
	got, err = StampFence(kept, "orders", 12)
	if err != nil || got["other"] != "x" || got["fence.sync.metaparticle.io/orders"] != "12" {
		t.Fatalf("StampFence(kept) = %v, %v", got, err)
	}
	if _, err := StampFence(nil, "orders", 0); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "token:") {
		t.Fatalf("StampFence(token 0) error = %v, want ErrInvalidArgument naming token", err)
	}
}

type sqlStateError struct{ state, msg string }

func (e *sqlStateError) Error() string    { return e.msg }
func (e *sqlStateError) SQLState() string { return e.state }

type execFunc func(query string, args ...any) error

func (f execFunc) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return nil, f(query, args...)
}

// The real PostgreSQL function is exercised by test/fencing; this checks the mapping of its error.
func TestFenceMapsTheStaleTokenError(t *testing.T) {
	stale := &sqlStateError{"MSF01", `stale fencing token for lock "orders": this write carries token 7, the current token is 8`}
	var sent []any
	err := Fence(context.Background(), execFunc(func(q string, args ...any) error { sent = args; return stale }), "orders", 7)
	var fenced *StaleFenceError
	if !errors.Is(err, ErrStaleFence) || !errors.As(err, &fenced) || fenced.Name != "orders" || fenced.Token != 7 || !errors.Is(err, stale) {
		t.Fatalf("Fence error = %#v, want *StaleFenceError wrapping the driver's", err)
	}
	if len(sent) != 2 || sent[0] != "orders" || sent[1] != int64(7) {
		t.Fatalf("Fence sent %v", sent)
	}
	other := &sqlStateError{"40001", "could not serialize access"}
	if err := Fence(context.Background(), execFunc(func(string, ...any) error { return other }), "orders", 7); err != other {
		t.Fatalf("Fence passed %v, want the driver's own error", err)
	}
}
