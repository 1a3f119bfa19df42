// Package engine implements distributed locks and leader election on top of
// a LeaseStore: versioned lease records with conditional writes and a watch.
// It has no gRPC and no Kubernetes types; time and the store are injected.
//
// Safety model. A lease has one holder, named by the identity of the daemon
// process that wrote it. Every write is conditional on the version last read,
// so two daemons can never both succeed in taking the same lease version.
// Each acquisition increments the lease's transition count, which is the
// fencing token (or election term): strictly increasing per name, because
// managed leases are never deleted, only released, and each daemon writes
// above the highest count it has seen for the name, even across a deletion.
//
// All timing decisions use timestamps captured locally on a monotonic clock,
// never the times written in the lease:
//   - The holder counts its renew deadline from the moment it SENT its last
//     successful renewal, and tells its caller to stop (Lost, Deposed) when
//     that deadline passes. The deadline is shorter than the lease duration.
//   - Everyone else counts the lease's expiry from the moment THEY observed
//     the holder's last renewal, which is necessarily after it was sent.
// So the holder stops at least (lease duration - renew deadline) before anyone
// else may take over, whatever the offset between the nodes' clocks: clock
// skew is tolerated. What is NOT tolerated is clock drift beyond that margin
// over one lease duration (a clock running much slower than others), a process
// paused longer than the margin between checking its deadline and acting, or
// a caller that keeps acting after being told it lost. Fencing tokens exist
// for that last case: a resource that rejects tokens older than the newest it
// has seen stays safe even then.
//
// Liveness. Waiting costs no store requests: waiters learn of releases from
// the watch. A daemon whose claims wait joins the lease's wait queue (one
// write); on release the daemon at the head takes the lease with one write,
// so handoff takes one watch event plus one write, and daemons are served in
// order. Within a daemon, claims for one name wait in FIFO order and are
// handed the lease directly when no other daemon waits. A crashed holder's
// lease is taken over once it expires; a crashed waiter at the head of the
// queue delays others by at most the turn grace (see timing.ts).
//
// docs/design.md states each guarantee in full, with the tests that prove it.
export { Engine, type EngineOptions, DEFAULT_LEASE_DURATION_MS, DEFAULT_RENEW_DEADLINE_MS, DEFAULT_LEASE_PREFIX } from "./engine.js";
export { type Clock, type Timer, systemClock } from "./clock.js";
export { SyncError, type SyncErrorCode, invalidArgument } from "./errors.js";
export type { Grant, LossReason } from "./claim.js";
export type { AcquireSink, LockState, TryAcquireResult } from "./locks.js";
export type { CampaignSink, LeaderState } from "./elections.js";
export { type EngineObserver, type EngineStats, noStats } from "./observer.js";
export * from "./validate.js";
