// etcd-peer drives etcd's client/v3/concurrency recipes against an etcd
// server, so the benchmark harness can compare them with metaparticle-sync.
//
// --mode=election: one candidate. It campaigns, prints "elected", and then
// waits for a line on stdin: "resign" resigns (printing "releasing" before
// and "released" after) and campaigns again at the back of the queue; "exit"
// closes the session (revoking its lease) and exits. SIGTERM does the same as
// "exit". The session's lease is granted here and kept alive by the session;
// a second keep-alive listener on the same lease prints "renewed" for every
// keep-alive reply, so the harness knows when the lease was last refreshed.
//
// --mode=mutex: --sessions goroutines, each with its own session and
// concurrency.Mutex on one key prefix, lock and unlock in a loop for
// --duration after a "go" line on stdin (or at once with --go), then print a
// "summary" line with the number of acquisitions.
//
// Events are JSON lines on stdout (see internal/events).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/metaparticle-io/metaparticle-sync/bench/peers/internal/events"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "etcd client URL")
	mode := flag.String("mode", "election", "election or mutex")
	name := flag.String("name", "bench", "election or mutex name (key prefix /bench/<mode>/<name>)")
	identity := flag.String("identity", "", "candidate value (default host name and pid)")
	ttl := flag.Int("ttl", 15, "session TTL in seconds: a crashed holder's keys go when it runs out")
	sessions := flag.Int("sessions", 8, "mutex mode: concurrent sessions, each locking in a loop")
	duration := flag.Duration("duration", 20*time.Second, "mutex mode: how long to lock in a loop")
	startNow := flag.Bool("go", false, "mutex mode: start at once instead of waiting for \"go\" on stdin")
	flag.Parse()
	if *identity == "" {
		host, _ := os.Hostname()
		*identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{*endpoints},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		fail("connect: %v", err)
	}
	defer client.Close()
	prefix := fmt.Sprintf("/bench/%s/%s", *mode, *name)
	switch *mode {
	case "election":
		election(client, prefix, *identity, *ttl)
	case "mutex":
		mutex(client, prefix, *identity, *ttl, *sessions, *duration, *startNow)
	default:
		fail("unknown --mode %q", *mode)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "etcd-peer: "+format+"\n", args...)
	os.Exit(1)
}

func election(client *clientv3.Client, prefix, identity string, ttl int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	grant, err := client.Grant(ctx, int64(ttl))
	if err != nil {
		fail("grant: %v", err)
	}
	session, err := concurrency.NewSession(client, concurrency.WithLease(grant.ID), concurrency.WithTTL(ttl))
	if err != nil {
		fail("session: %v", err)
	}
	keepAlive, err := client.KeepAlive(ctx, grant.ID)
	if err != nil {
		fail("keepalive: %v", err)
	}
	go func() {
		for reply := range keepAlive {
			events.Emit("renewed", map[string]any{"id": identity, "ttl": reply.TTL})
		}
	}()
	e := concurrency.NewElection(session, prefix)

	commands := make(chan string)
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			commands <- scanner.Text()
		}
		close(commands)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	exit := func(code int) {
		cancel()
		_ = session.Close() // revokes the lease: our key goes at once
		events.Emit("exit", map[string]any{"id": identity})
		os.Exit(code)
	}

	events.Emit("started", map[string]any{"id": identity, "pid": os.Getpid(), "lease": fmt.Sprintf("%x", grant.ID), "ttl": ttl})
	for {
		events.Emit("campaigning", map[string]any{"id": identity})
		campaigned := make(chan error, 1)
		go func() { campaigned <- e.Campaign(ctx, identity) }()
		select {
		case err := <-campaigned:
			if err != nil {
				fail("campaign: %v", err)
			}
		case <-signals:
			exit(0)
		case <-session.Done():
			events.Emit("lost", map[string]any{"id": identity, "reason": "session ended while campaigning"})
			os.Exit(1)
		}
		events.Emit("elected", map[string]any{"id": identity, "rev": e.Rev()})
	leading:
		for {
			select {
			case command, ok := <-commands:
				if !ok || command == "exit" {
					events.Emit("releasing", map[string]any{"id": identity})
					exit(0)
				}
				if command == "resign" {
					events.Emit("releasing", map[string]any{"id": identity})
					if err := e.Resign(ctx); err != nil {
						fail("resign: %v", err)
					}
					events.Emit("released", map[string]any{"id": identity})
					break leading
				}
			case <-signals:
				events.Emit("releasing", map[string]any{"id": identity})
				exit(0)
			case <-session.Done():
				events.Emit("lost", map[string]any{"id": identity, "reason": "session ended"})
				os.Exit(1)
			}
		}
	}
}

func mutex(client *clientv3.Client, prefix, identity string, ttl, sessions int, duration time.Duration, startNow bool) {
	ready := make([]*concurrency.Session, sessions)
	for i := range ready {
		s, err := concurrency.NewSession(client, concurrency.WithTTL(ttl))
		if err != nil {
			fail("session %d: %v", i, err)
		}
		defer s.Close()
		ready[i] = s
	}
	events.Emit("started", map[string]any{"id": identity, "pid": os.Getpid(), "sessions": sessions})
	if !startNow {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() && scanner.Text() != "go" {
		}
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(duration))
	defer cancel()
	var total atomic.Int64
	counts := make([]int64, sessions)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for i, s := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := concurrency.NewMutex(s, prefix)
			for ctx.Err() == nil {
				if err := m.Lock(ctx); err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
						failures.Add(1)
					}
					return
				}
				counts[i]++
				total.Add(1)
				if err := m.Unlock(context.Background()); err != nil {
					failures.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	events.Emit("summary", map[string]any{
		"id": identity, "acquired": total.Load(), "per_session": counts, "failures": failures.Load(),
		"elapsed_ms": elapsed.Milliseconds(),
	})
}
