package msync

// Fencing where the write lands (docs/design.md 3.12): stamp a lock's token
// on a Kubernetes object before writing it, or check it in the transaction of
// a PostgreSQL write. Neither helper talks to a server itself, and this
// package imports no Kubernetes client and no database driver: the caller
// writes with its own client, in its own transaction.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// FenceAnnotationPrefix is the prefix of every fence annotation key; the
// name part follows it.
const FenceAnnotationPrefix = "fence.sync.metaparticle.io/"

// StaleFenceSQLState is the SQLSTATE sql/fencing.sql raises for a stale token.
const StaleFenceSQLState = "MSF01"

const (
	maxKeyName = 63 // the longest name part of an annotation key
	hashDigits = 16 // hex digits of SHA-256 that end a shortened name part
)

var leaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// ErrStaleFence: a newer holder of the lock has already made a fenced write;
// Fence returns a *StaleFenceError that matches it.
var ErrStaleFence = errors.New("msync: stale fencing token")

// FenceAnnotationKey is the annotation that carries the fence of lock or
// election name: "fence.sync.metaparticle.io/<name>". A name longer than 63
// characters is shortened to its first 46, a dash and the first 16 hex digits
// of its SHA-256. A name that is not a lock or election name is an error
// naming the field.
func FenceAnnotationKey(name string) (string, error) {
	if len(name) == 0 || len(name) > 253 || !leaseName.MatchString(name) {
		return "", fmt.Errorf("msync: name: %q is not a lock or election name (a DNS subdomain name, at most 253 characters): %w", name, ErrInvalidArgument)
	}
	if len(name) <= maxKeyName {
		return FenceAnnotationPrefix + name, nil
	}
	sum := sha256.Sum256([]byte(name))
	return FenceAnnotationPrefix + name[:maxKeyName-hashDigits-1] + "-" + hex.EncodeToString(sum[:])[:hashDigits], nil
}

func checkToken(token int64) error {
	if token < 1 {
		return fmt.Errorf("msync: token: %d is not a fencing token (a positive integer): %w", token, ErrInvalidArgument)
	}
	return nil
}

// StampFence returns annotations (a new map when nil) with the fence of lock
// or election name set to token: the lock's Token, the leadership's Term, or
// MSYNC_FENCING_TOKEN / MSYNC_TERM as the CLI passes them. Stamp the object
// right before writing it:
//
//	obj.SetAnnotations(must(msync.StampFence(obj.GetAnnotations(), lock.Name, lock.Token)))
//
// With the fencing policy installed (deploy/components/fencing), the API
// server refuses the write if a newer holder has written the object since.
func StampFence(annotations map[string]string, name string, token int64) (map[string]string, error) {
	key, err := FenceAnnotationKey(name)
	if err != nil {
		return nil, err
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[key] = strconv.FormatInt(token, 10)
	return annotations, nil
}

// StaleFenceError is a fenced write refused because a newer holder of the
// lock has written; errors.Is(err, ErrStaleFence) is true, and Unwrap gives
// the driver's error.
type StaleFenceError struct {
	// Name is the lock or election name the write was fenced by.
	Name string
	// Token is the token this write carried.
	Token int64
	// Err is the database driver's error (SQLSTATE StaleFenceSQLState); its
	// message names the lock, this token and the current one.
	Err error
}

func (e *StaleFenceError) Error() string { return "msync: " + e.Err.Error() }

// Is makes errors.Is(err, ErrStaleFence) true.
func (e *StaleFenceError) Is(target error) bool { return target == ErrStaleFence }

func (e *StaleFenceError) Unwrap() error { return e.Err }

// SQLExecer is what Fence needs: *sql.Tx (and *sql.Conn) have it.
type SQLExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var _ SQLExecer = (*sql.Tx)(nil)

// Fence checks token against the highest token recorded for name in
// PostgreSQL (sql/fencing.sql) and records it. Call it with the transaction
// of the guarded write, before the write: when a newer holder has written it
// returns a *StaleFenceError and the caller must roll back. The driver must
// use PostgreSQL's $1 placeholders (pgx's stdlib, lib/pq) and report the
// SQLSTATE through a SQLState() method, as both do.
func Fence(ctx context.Context, tx SQLExecer, name string, token int64) error {
	if name == "" {
		return fmt.Errorf("msync: name: must be a non-empty lock or election name: %w", ErrInvalidArgument)
	}
	if err := checkToken(token); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "SELECT metaparticle_sync_fence($1, $2)", name, token)
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) && coded.SQLState() == StaleFenceSQLState {
		return &StaleFenceError{Name: name, Token: token, Err: err}
	}
	return err
}
