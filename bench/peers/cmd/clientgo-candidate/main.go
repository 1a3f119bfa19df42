// clientgo-candidate is one leader-election candidate built on client-go's
// tools/leaderelection with a LeaseLock, configured the way operators use it,
// so the benchmark harness can compare it with metaparticle-sync.
//
// Events on stdout (JSON lines, see internal/events): started, leader (the
// observed leader changed), elected, renewed (every successful write of the
// Lease naming this candidate: acquisitions and renewals), releasing
// (SIGTERM/SIGINT received), released (the release write succeeded),
// stopped (never led, or stopped after releasing), lost (leadership ended
// without being asked to), exit.
//
// On SIGTERM the context is cancelled; with ReleaseOnCancel (the default here)
// client-go then clears the holder so another candidate can take over at its
// next retry instead of after the lease duration.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/metaparticle-io/metaparticle-sync/bench/peers/internal/events"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (required)")
	namespace := flag.String("namespace", "default", "namespace of the Lease")
	name := flag.String("name", "bench", "name of the Lease")
	identity := flag.String("identity", "", "this candidate's identity (default host name and pid)")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "LeaseDuration: how long followers wait after the last observed renewal")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "RenewDeadline: how long the leader retries renewing before it gives up")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "RetryPeriod: time between attempts to acquire or renew (jittered by 1.2 for followers)")
	releaseOnCancel := flag.Bool("release-on-cancel", true, "ReleaseOnCancel: clear the holder on SIGTERM")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "clientgo-candidate: --kubeconfig is required")
		os.Exit(2)
	}
	if *identity == "" {
		host, _ := os.Hostname()
		*identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo-candidate: kubeconfig: %v\n", err)
		os.Exit(2)
	}
	// The request timeout resourcelock.NewFromKubeconfig would choose.
	config.Timeout = max(time.Second, *renewDeadline/2)
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(config, "leader-election"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo-candidate: client: %v\n", err)
		os.Exit(2)
	}
	lock := &tracedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: *name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: *identity},
	}}

	ctx, cancel := context.WithCancel(context.Background())
	var leading, asked atomic.Bool
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-signals
		asked.Store(true)
		events.Emit("releasing", map[string]any{"id": *identity, "signal": s.String(), "leading": leading.Load()})
		cancel()
	}()

	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            *name,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: *releaseOnCancel,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				leading.Store(true)
				events.Emit("elected", map[string]any{"id": *identity})
			},
			OnStoppedLeading: func() {
				was := leading.Swap(false)
				switch {
				case was && !asked.Load():
					events.Emit("lost", map[string]any{"id": *identity})
				default:
					events.Emit("stopped", map[string]any{"id": *identity, "was_leading": was})
				}
			},
			OnNewLeader: func(leader string) {
				events.Emit("leader", map[string]any{"id": *identity, "leader": leader})
			},
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo-candidate: %v\n", err)
		os.Exit(2)
	}
	events.Emit("started", map[string]any{
		"id": *identity, "pid": os.Getpid(), "lease": *name,
		"lease_duration_ms": leaseDuration.Milliseconds(), "renew_deadline_ms": renewDeadline.Milliseconds(),
		"retry_period_ms": retryPeriod.Milliseconds(), "release_on_cancel": *releaseOnCancel,
	})
	elector.Run(ctx)
	events.Emit("exit", map[string]any{"id": *identity})
}

// tracedLock reports each successful write of the Lease, so the harness can
// see when the leader last renewed; it changes nothing else.
type tracedLock struct {
	resourcelock.Interface
}

func (l *tracedLock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, record)
	if err == nil {
		l.report(record)
	}
	return err
}

func (l *tracedLock) Create(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, record)
	if err == nil {
		l.report(record)
	}
	return err
}

func (l *tracedLock) report(record resourcelock.LeaderElectionRecord) {
	if record.HolderIdentity == l.Identity() {
		events.Emit("renewed", map[string]any{"id": l.Identity(), "transitions": record.LeaderTransitions})
	} else if record.HolderIdentity == "" {
		events.Emit("released", map[string]any{"id": l.Identity(), "transitions": record.LeaderTransitions})
	}
}
