// The Go conformance driver (test/conformance/PROTOCOL.md): performs each
// command through the msync package and reports what it says.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/metaparticle-io/metaparticle-sync/clients/go/msync"
	"google.golang.org/grpc/codes"
)

type command map[string]any

func (c command) str(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c command) has(key string) bool {
	v, ok := c[key]
	return ok && v != nil
}

func (c command) integer(key string) int {
	f, _ := c[key].(float64)
	return int(f)
}

func (c command) ms(key string) time.Duration {
	f, _ := c[key].(float64)
	return time.Duration(f) * time.Millisecond
}

var (
	out          = json.NewEncoder(os.Stdout)
	outMu        sync.Mutex
	clients      = map[string]*msync.Client{}
	locks        = map[string]*msync.Lock{}
	leases       = map[string]*msync.Lease{}
	permits      = map[string]*msync.Permit{}
	permitLeases = map[string]*msync.PermitLease{}
	rwHolds      = map[string]*msync.RWHold{}
	rwLeases     = map[string]*msync.RWLease{}
	campaigns    = map[string]*msync.Campaign{}
	observations = map[string]context.CancelFunc{}
)

func write(message map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(message)
}

type failure struct {
	code  codes.Code
	field string
	msg   string
}

func (f *failure) Error() string { return f.msg }

func unimplemented(format string, args ...any) error {
	return &failure{code: codes.Unimplemented, msg: fmt.Sprintf(format, args...)}
}

func errorOf(err error) map[string]any {
	var e *msync.Error
	var f *failure
	switch {
	case errors.As(err, &e):
		return map[string]any{"code": codeName(e.Code), "field": nullable(e.Field), "kind": kindOf(err), "message": e.Message}
	case errors.As(err, &f):
		return map[string]any{"code": codeName(f.code), "field": nil, "message": f.msg}
	case errors.Is(err, context.DeadlineExceeded):
		return map[string]any{"code": "DEADLINE_EXCEEDED", "field": nil, "message": err.Error()}
	}
	return map[string]any{"code": "UNKNOWN", "field": nil, "message": err.Error()}
}

// kindOf names the wrapper's sentinel error that err matches, as the
// protocol's error kinds; nil for none of them.
func kindOf(err error) any {
	switch {
	case errors.Is(err, msync.ErrPermitsMismatch):
		return "permits-mismatch"
	case errors.Is(err, msync.ErrNotHeld):
		return "not-held"
	case errors.Is(err, msync.ErrWaitTimeout):
		return "wait-timeout"
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// codeName is the canonical upper snake case name, e.g. FAILED_PRECONDITION.
func codeName(code codes.Code) string {
	var b strings.Builder
	for i, r := range code.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

func client(c command) (*msync.Client, error) {
	cl, ok := clients[c.str("client")]
	if !ok {
		return nil, unimplemented("no client %q", c.str("client"))
	}
	return cl, nil
}

func lockOptions(c command) []msync.LockOption {
	var options []msync.LockOption
	if c.has("holder") {
		options = append(options, msync.WithHolder(c.str("holder")))
	}
	if c.has("leaseDurationMs") {
		options = append(options, msync.WithLeaseDuration(c.ms("leaseDurationMs")))
	}
	if c.has("waitTimeoutMs") {
		options = append(options, msync.WithWaitTimeout(c.ms("waitTimeoutMs")))
	}
	if c.has("fair") {
		fair, _ := c["fair"].(bool)
		options = append(options, msync.WithFair(fair))
	}
	return options
}

// holdersOf is a semaphore's holders as the protocol reports them.
func holdersOf(holders []msync.PermitHolder) []map[string]any {
	out := make([]map[string]any, len(holders))
	for i, h := range holders {
		out[i] = map[string]any{"holder": h.Holder, "token": h.Token}
	}
	return out
}

// watchable is what a held lock, permit or read-write hold shares.
type watchable interface {
	Lost() <-chan struct{}
	Err() error
}

// watchLost reports the hold's loss as a `lost` event. Lost closes on a
// release too; Err tells that normal end apart, and nothing is reported then.
func watchLost(handle string, hold watchable) {
	go func() {
		<-hold.Lost()
		var lost *msync.LostError
		if errors.As(hold.Err(), &lost) && lost.Reason != msync.ReasonReleased {
			write(map[string]any{"event": "lost", "handle": handle, "reason": string(lost.Reason), "message": lost.Message})
		}
	}()
}

func readOptions(c command) []msync.ReadOption {
	if fresh, _ := c["fresh"].(bool); fresh {
		return []msync.ReadOption{msync.Fresh()}
	}
	return nil
}

// perform does one command. Its timeoutMs, if any, is the call's deadline,
// as a context with that timeout; without it the wrapper's defaults apply.
func perform(c command) (map[string]any, error) {
	ctx := context.Background()
	if c.has("timeoutMs") {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ms("timeoutMs"))
		defer cancel()
	}
	switch c.str("op") {
	case "connect":
		cl, err := msync.New(msync.WithAddress(c.str("address")))
		if err != nil {
			return nil, err
		}
		clients[c.str("as")] = cl
		return nil, nil
	case "lock":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		lock, err := cl.Lock(ctx, c.str("name"), lockOptions(c)...)
		if err != nil {
			return nil, err
		}
		locks[c.str("as")] = lock
		watchLost(c.str("as"), lock)
		return map[string]any{"token": lock.Token, "holder": lock.Holder}, nil
	case "tryLock":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		lease, err := cl.TryLock(ctx, c.str("name"), lockOptions(c)...)
		if errors.Is(err, msync.ErrNotFree) {
			return map[string]any{"acquired": false}, nil
		}
		if err != nil {
			return nil, err
		}
		leases[c.str("as")] = lease
		return map[string]any{"acquired": true, "token": lease.Token, "validForMs": lease.ValidFor().Milliseconds()}, nil
	case "acquirePermit":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		permit, err := cl.AcquirePermit(ctx, c.str("name"), c.integer("permits"), lockOptions(c)...)
		if err != nil {
			return nil, err
		}
		permits[c.str("as")] = permit
		watchLost(c.str("as"), permit)
		return map[string]any{"token": permit.Token, "holder": permit.Holder, "permits": permit.Permits, "holdId": permit.HoldID}, nil
	case "tryAcquirePermit":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		lease, err := cl.TryAcquirePermit(ctx, c.str("name"), c.integer("permits"), lockOptions(c)...)
		var full *msync.NoPermitFreeError
		if errors.As(err, &full) {
			return map[string]any{"acquired": false, "holders": holdersOf(full.Holders)}, nil
		}
		if err != nil {
			return nil, err
		}
		permitLeases[c.str("as")] = lease
		return map[string]any{
			"acquired": true, "token": lease.Token, "holder": lease.Holder, "permits": lease.Permits, "holdId": lease.HoldID,
			"validForMs": lease.ValidFor().Milliseconds(),
		}, nil
	case "getSemaphore":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		info, err := cl.GetSemaphore(ctx, c.str("name"), readOptions(c)...)
		if err != nil {
			return nil, err
		}
		return map[string]any{"permits": info.Permits, "token": info.Token, "holders": holdersOf(info.Holders)}, nil
	case "acquireRW":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		hold, err := cl.AcquireRWLock(ctx, c.str("name"), msync.Mode(c.str("mode")), lockOptions(c)...)
		if err != nil {
			return nil, err
		}
		rwHolds[c.str("as")] = hold
		watchLost(c.str("as"), hold)
		return map[string]any{"token": hold.Token, "holder": hold.Holder, "mode": string(hold.Mode), "holdId": hold.HoldID}, nil
	case "tryAcquireRW":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		lease, err := cl.TryAcquireRWLock(ctx, c.str("name"), msync.Mode(c.str("mode")), lockOptions(c)...)
		var busy *msync.RWLockNotFreeError
		if errors.As(err, &busy) {
			return map[string]any{"acquired": false, "mode": string(busy.State.Mode)}, nil
		}
		if err != nil {
			return nil, err
		}
		rwLeases[c.str("as")] = lease
		return map[string]any{
			"acquired": true, "token": lease.Token, "holder": lease.Holder, "mode": string(lease.Mode), "holdId": lease.HoldID,
			"validForMs": lease.ValidFor().Milliseconds(),
		}, nil
	case "getRWLock":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		info, err := cl.GetRWLock(ctx, c.str("name"), readOptions(c)...)
		if err != nil {
			return nil, err
		}
		return map[string]any{"mode": string(info.Mode), "holder": info.Holder, "token": info.Token, "readers": info.SharedHolds()}, nil
	case "renew":
		var renew func(context.Context, ...time.Duration) (time.Duration, error)
		if lease, ok := leases[c.str("handle")]; ok {
			renew = lease.Renew
		} else if lease, ok := permitLeases[c.str("handle")]; ok {
			renew = lease.Renew
		} else if lease, ok := rwLeases[c.str("handle")]; ok {
			renew = lease.Renew
		} else {
			return nil, unimplemented("no lease %q", c.str("handle"))
		}
		validFor, err := renew(ctx, c.ms("leaseDurationMs"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"validForMs": validFor.Milliseconds()}, nil
	case "release", "close":
		handle := c.str("handle")
		if lock, ok := locks[handle]; ok {
			// The acknowledged release: Unlock returns once the sidecar has
			// released the lock (or its deadline passed).
			return nil, lock.Unlock(ctx)
		} else if lease, ok := leases[handle]; ok {
			return nil, lease.Release(ctx)
		} else if permit, ok := permits[handle]; ok {
			// Acknowledged, as Unlock.
			return nil, permit.Release(ctx)
		} else if lease, ok := permitLeases[handle]; ok {
			return nil, lease.Release(ctx)
		} else if hold, ok := rwHolds[handle]; ok {
			// Acknowledged, as Unlock, by its hold.
			return nil, hold.Release(ctx)
		} else if lease, ok := rwLeases[handle]; ok {
			return nil, lease.Release(ctx)
		} else if campaign, ok := campaigns[handle]; ok && c.str("op") == "close" {
			campaign.Close()
		} else if cancel, ok := observations[handle]; ok && c.str("op") == "close" {
			cancel()
		} else if cl, ok := clients[handle]; ok && c.str("op") == "close" {
			return nil, cl.Close()
		} else {
			return nil, unimplemented("no handle %q for %s", handle, c.str("op"))
		}
		return nil, nil
	case "getLock":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		info, err := cl.GetLock(ctx, c.str("name"), readOptions(c)...)
		if err != nil {
			return nil, err
		}
		return map[string]any{"held": info.Held, "holder": info.Holder, "token": info.Token}, nil
	case "getLeader":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		leader, err := cl.GetLeader(ctx, c.str("name"), readOptions(c)...)
		if err != nil {
			return nil, err
		}
		return map[string]any{"leader": leader.Leader, "value": leader.Value, "term": leader.Term}, nil
	case "campaign":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		var options []msync.CampaignOption
		if c.has("candidate") {
			options = append(options, msync.WithCandidate(c.str("candidate")))
		}
		if c.has("value") {
			options = append(options, msync.WithValue(c.str("value")))
		}
		if c.has("leaseDurationMs") {
			options = append(options, msync.WithLeaseDuration(c.ms("leaseDurationMs")))
		}
		// A campaign has no overall deadline: timeoutMs does not apply.
		campaign, err := cl.Campaign(context.Background(), c.str("name"), options...)
		if err != nil {
			return nil, err
		}
		handle := c.str("as")
		campaigns[handle] = campaign
		go func() {
			for event := range campaign.Events() {
				switch event.Type {
				case msync.Elected:
					write(map[string]any{"event": "elected", "handle": handle, "term": event.Term})
				case msync.Deposed:
					reason := string(event.Reason)
					if event.Reason == msync.ReasonReleased {
						reason = "resigned"
					}
					write(map[string]any{"event": "deposed", "handle": handle, "term": event.Term, "reason": reason, "message": event.Message})
				case msync.LeaderChanged:
					write(map[string]any{"event": "leader-changed", "handle": handle, "leader": event.Leader, "value": event.Value, "term": event.Term})
				}
			}
			ended := map[string]any{"event": "campaign-ended", "handle": handle}
			if err := campaign.Err(); err != nil {
				ended["error"] = errorOf(err)
			}
			write(ended)
		}()
		return nil, nil
	case "proclaim", "resign":
		campaign, ok := campaigns[c.str("handle")]
		if !ok {
			return nil, unimplemented("no campaign %q", c.str("handle"))
		}
		if c.str("op") == "proclaim" {
			return nil, campaign.Proclaim(ctx, c.str("value"))
		}
		return nil, campaign.Resign(ctx)
	case "observe":
		cl, err := client(c)
		if err != nil {
			return nil, err
		}
		handle := c.str("as")
		// An observation has no overall deadline: timeoutMs does not apply.
		observeCtx, cancel := context.WithCancel(context.Background())
		observations[handle] = cancel
		go func() {
			ended := map[string]any{"event": "observe-ended", "handle": handle}
			for leader, err := range cl.Observe(observeCtx, c.str("name")) {
				if err != nil {
					ended["error"] = errorOf(err)
					break
				}
				write(map[string]any{"event": "leader", "handle": handle, "leader": leader.Leader, "value": leader.Value, "term": leader.Term})
			}
			write(ended)
		}()
		return nil, nil
	}
	return nil, unimplemented("unknown op %q", c.str("op"))
}

func main() {
	write(map[string]any{"event": "ready", "language": "go", "client": "msync"})
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		var c command
		if err := json.Unmarshal(lines.Bytes(), &c); err != nil {
			fmt.Fprintf(os.Stderr, "bad command %q: %v\n", lines.Text(), err)
			continue
		}
		reply, err := perform(c)
		if reply == nil {
			reply = map[string]any{}
		}
		reply["id"] = c["id"]
		if err != nil {
			reply = map[string]any{"id": c["id"], "ok": false, "error": errorOf(err)}
		} else {
			reply["ok"] = true
		}
		write(reply)
	}
	for _, lock := range locks {
		_ = lock.Unlock(context.Background())
	}
	for _, permit := range permits {
		_ = permit.Release(context.Background())
	}
	for _, hold := range rwHolds {
		_ = hold.Release(context.Background())
	}
	for _, campaign := range campaigns {
		campaign.Close()
	}
	for _, cancel := range observations {
		cancel()
	}
	for _, cl := range clients {
		_ = cl.Close()
	}
}
