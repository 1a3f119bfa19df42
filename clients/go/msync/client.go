// Package msync is the Go client of the metaparticle-sync sidecar: distributed
// locks with fencing tokens and leader election, held for this process by a
// daemon that it reaches over gRPC on loopback.
//
// The sidecar renews what it holds and sends a heartbeat after every renewal
// with how much longer the holder may safely act. A daemon that froze or died
// cannot say that a lock was lost, so this package keeps a deadline of its
// own on the process's monotonic clock: if no heartbeat arrives before the
// last one runs out, the lock is reported lost (or the leader deposed) by
// the client itself. Act only while Lost() is open, and pass the fencing
// token to every resource you write to.
package msync

import (
	"fmt"
	"os"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultAddress is where the sidecar listens unless told otherwise.
const DefaultAddress = "127.0.0.1:13131"

// Client talks to one sidecar. It is safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	// Locks and Elections are the generated stubs, for the calls this
	// package does not wrap (TryAcquire, Renew, Release, GetLock, GetLeader).
	Locks     syncv1.LockServiceClient
	Elections syncv1.ElectionServiceClient
}

type clientConfig struct {
	address     string
	dialOptions []grpc.DialOption
}

// Option configures New.
type Option func(*clientConfig)

// WithAddress sets the sidecar's host:port. The default is $MSYNC_ADDRESS,
// else DefaultAddress.
func WithAddress(address string) Option {
	return func(c *clientConfig) { c.address = address }
}

// WithDialOptions adds gRPC dial options, for example credentials; the
// default is a plaintext connection, as the sidecar listens on loopback.
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(c *clientConfig) { c.dialOptions = append(c.dialOptions, options...) }
}

// New makes a client. It does not connect until the first call.
func New(options ...Option) (*Client, error) {
	cfg := clientConfig{address: os.Getenv("MSYNC_ADDRESS")}
	if cfg.address == "" {
		cfg.address = DefaultAddress
	}
	for _, option := range options {
		option(&cfg)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.dialOptions...)
	conn, err := grpc.NewClient(cfg.address, dial...)
	if err != nil {
		return nil, fmt.Errorf("msync: sidecar address %q: %w", cfg.address, err)
	}
	return &Client{conn: conn, Locks: syncv1.NewLockServiceClient(conn), Elections: syncv1.NewElectionServiceClient(conn)}, nil
}

// Close closes the connection, which releases every lock and ends every
// campaign of this client.
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
