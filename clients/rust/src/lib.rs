//! The Rust client of the metaparticle-sync sidecar: distributed locks,
//! counting semaphores and read-write locks with fencing tokens, and leader
//! election, held for this process by a daemon that it reaches over gRPC on
//! loopback.
//!
//! ```no_run
//! # async fn run() -> Result<(), metaparticle_sync::Error> {
//! let client = metaparticle_sync::Client::new()?; // $MSYNC_ADDRESS, else 127.0.0.1:13131
//! let lock = client.lock("db-migration").await?;
//! tokio::select! {
//!     loss = lock.lost() => eprintln!("stopped: {loss}"),
//!     _ = migrate(lock.token()) => {}
//! }
//! lock.release().await?;
//! # Ok(()) }
//! # async fn migrate(_fencing_token: i64) {}
//! ```
//!
//! # Safety model
//!
//! The sidecar renews what it holds and sends a heartbeat after every
//! renewal with how much longer the holder may safely act. A sidecar that
//! froze or died cannot say that a lock was lost, so this client keeps a
//! deadline of its own on the process's monotonic clock: if no heartbeat
//! arrives before the last one runs out, the lock is reported lost (or the
//! leader deposed) by the client itself. Act only while the lost signal has
//! not fired, and pass the fencing token (or term) to every resource you
//! write to, so that it can refuse a holder that acted too late: a process
//! paused longer than the lease can always wake up believing it still holds.
//!
//! # Deadlines
//!
//! No call waits forever. Every call is bounded by [`DEFAULT_CALL_TIMEOUT`]
//! (10 s) unless [`Client::with_timeout`] (or `with_timeout` on a lock, lease
//! or campaign) gives another deadline, and fails with
//! [`Error::DeadlineExceeded`] when it runs out. [`Client::lock`] (and
//! [`Client::acquire_permit`], [`Client::acquire_rwlock`]) waits at most its
//! wait timeout ([`DEFAULT_WAIT_TIMEOUT`], 5 min), kept by the sidecar and by
//! this client's own clock, and fails with [`Error::WaitTimeout`]. Campaigns and observations last until you end
//! them; the channel's keepalive ([`KEEPALIVE_TIME`], [`KEEPALIVE_TIMEOUT`])
//! notices a sidecar that stopped answering.
//!
//! Everything here runs on Tokio: create the client, locks and campaigns
//! inside a Tokio runtime.

mod client;
mod election;
mod error;
pub mod fencing;
mod hold;
mod lease;
mod lock;
mod rwlock;
mod semaphore;
mod signal;

/// The stubs generated from the proto at build time. Not part of the API.
mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("metaparticle.sync.v1");
}

pub use client::{
    Client, DEFAULT_ADDRESS, DEFAULT_CALL_TIMEOUT, DEFAULT_WAIT_TIMEOUT, KEEPALIVE_TIME, KEEPALIVE_TIMEOUT,
    ReadConsistency, WAIT_TIMEOUT_GRACE,
};
pub use election::{
    Campaign, CampaignEvent, CampaignHandle, CampaignOptions, Leader, LeaderInfo, Leadership, Observation,
};
pub use error::Error;
pub use futures_core::Stream;
pub use lease::{LeasedLock, LockInfo, TryLockOptions};
pub use lock::{Lock, LockOptions};
pub use rwlock::{LeasedRwHold, Mode, ReaderSeat, RwHold, RwLockInfo};
pub use semaphore::{LeasedPermit, Permit, PermitHolder, SemaphoreInfo};
pub use signal::{Loss, LossReason, LostSignal};
