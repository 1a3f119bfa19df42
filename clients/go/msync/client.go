// Package msync is the Go client of the metaparticle-sync sidecar: distributed
// locks, read-write locks and counting semaphores with fencing tokens, and
// leader election, held for this process by a daemon that it reaches over
// gRPC on loopback.
//
// The sidecar renews what it holds and sends a heartbeat after every renewal
// with how much longer the holder may safely act. A daemon that froze or died
// cannot say that a lock was lost, so this package keeps a deadline of its
// own on the process's monotonic clock: if no heartbeat arrives before the
// last one runs out, the lock, read-write hold or permit is reported lost (or
// the leader deposed) by the client itself. Act only while Lost() is open,
// and pass the fencing token to every resource you write to.
//
// No call waits forever. Every method takes a context.Context; a call whose
// context has no deadline gets DefaultCallTimeout, and Lock, AcquireRWLock and
// AcquirePermit wait at most their wait timeout (DefaultWaitTimeout unless
// WithWaitTimeout says otherwise), counted on this process's clock as well as
// the sidecar's. The streams that last as long as their user wants (a held
// lock, read-write hold or permit, a campaign, an observation) have no
// overall deadline: a sidecar that stops answering is noticed by the
// heartbeat deadline of what is held and by gRPC keepalive on the connection.
// An expired deadline is an *Error with codes.DeadlineExceeded, and
// errors.Is(err, context.DeadlineExceeded) is true for it.
package msync

import (
	"context"
	"fmt"
	"os"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultAddress is where the sidecar listens unless told otherwise.
const DefaultAddress = "127.0.0.1:13131"

const (
	// DefaultCallTimeout bounds a call (TryLock, TryAcquirePermit,
	// TryAcquireRWLock, Renew, Release, Unlock, GetLock, GetSemaphore,
	// GetRWLock, GetLeader, Proclaim, Resign) whose context has no deadline;
	// WithCallTimeout changes it for a client.
	DefaultCallTimeout = 10 * time.Second
	// DefaultWaitTimeout is how long Lock waits for a lock, AcquirePermit
	// for a permit and AcquireRWLock for a read-write hold, unless
	// WithWaitTimeout or the context's deadline says otherwise.
	DefaultWaitTimeout = 5 * time.Minute
	// waitGrace is how long after the wait timeout Lock gives up on its own
	// clock if the sidecar has not answered: it should have said
	// DEADLINE_EXCEEDED by then.
	waitGrace = time.Second
	// KeepaliveTime is how long the connection may be idle before the client
	// pings the sidecar, with or without calls open.
	KeepaliveTime = 10 * time.Second
	// KeepaliveTimeout is how long the client waits for the ping's answer
	// before it closes the connection, failing the streams on it with
	// codes.Unavailable: this is how a campaign or an observation notices a
	// frozen sidecar.
	KeepaliveTimeout = 5 * time.Second
)

// Client talks to one sidecar. It is safe for concurrent use.
type Client struct {
	conn        *grpc.ClientConn
	callTimeout time.Duration
	// Locks, Elections, Semaphores and RWLocks are the generated stubs, for
	// calls this package does not wrap, for example a Release by token.
	Locks      syncv1.LockServiceClient
	Elections  syncv1.ElectionServiceClient
	Semaphores syncv1.SemaphoreServiceClient
	RWLocks    syncv1.RWLockServiceClient
}

type clientConfig struct {
	address     string
	callTimeout time.Duration
	dialOptions []grpc.DialOption
}

// Option configures New.
type Option func(*clientConfig)

// WithAddress sets the sidecar's host:port. The default is $MSYNC_ADDRESS,
// else DefaultAddress.
func WithAddress(address string) Option {
	return func(c *clientConfig) { c.address = address }
}

// WithCallTimeout sets the deadline of a call whose context has none; the
// default is DefaultCallTimeout. It must be positive.
func WithCallTimeout(d time.Duration) Option {
	return func(c *clientConfig) { c.callTimeout = d }
}

// WithDialOptions adds gRPC dial options, for example credentials; the
// default is a plaintext connection, as the sidecar listens on loopback.
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(c *clientConfig) { c.dialOptions = append(c.dialOptions, options...) }
}

// New makes a client. It does not connect until the first call.
func New(options ...Option) (*Client, error) {
	cfg := clientConfig{address: os.Getenv("MSYNC_ADDRESS"), callTimeout: DefaultCallTimeout}
	if cfg.address == "" {
		cfg.address = DefaultAddress
	}
	for _, option := range options {
		option(&cfg)
	}
	if cfg.callTimeout <= 0 {
		return nil, fmt.Errorf("msync: WithCallTimeout(%v): the call timeout must be positive", cfg.callTimeout)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout, PermitWithoutStream: true}),
	}, cfg.dialOptions...)
	conn, err := grpc.NewClient(cfg.address, dial...)
	if err != nil {
		return nil, fmt.Errorf("msync: sidecar address %q: %w", cfg.address, err)
	}
	return &Client{
		conn:        conn,
		callTimeout: cfg.callTimeout,
		Locks:       syncv1.NewLockServiceClient(conn),
		Elections:   syncv1.NewElectionServiceClient(conn),
		Semaphores:  syncv1.NewSemaphoreServiceClient(conn),
		RWLocks:     syncv1.NewRWLockServiceClient(conn),
	}, nil
}

// callContext bounds one call: by ctx's deadline if it has one, else by
// timeout from now.
func callContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// Close closes the connection, which releases every lock, read-write hold
// and permit and ends every campaign of this client.
func (c *Client) Close() error {
	return c.conn.Close()
}

// defaultName is the first of the environment variables that is set, else
// host/pid: what others see as the holder or leader.
func defaultName(variables ...string) string {
	for _, variable := range variables {
		if value := os.Getenv(variable); value != "" {
			return value
		}
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
