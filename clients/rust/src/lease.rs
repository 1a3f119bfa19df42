// Locks held for a lease: `Client::try_lock` makes one attempt and returns a
// lock that you renew and release yourself; and what anyone may read about a
// lock.
use std::time::{Duration, SystemTime};

use crate::client::{bounded, default_name, from_proto_duration, from_proto_time, optional_duration, request};
use crate::hold::{Hold, LeaseHold, lease_hold_api};
use crate::proto;
use crate::{Client, Error, ReadConsistency};

/// Options of [`Client::try_lock_with`].
#[derive(Debug, Clone, Default)]
pub struct TryLockOptions {
    /// Your name for the holder, shown to others. Default: `$MSYNC_HOLDER`,
    /// else host/pid.
    pub holder: Option<String>,
    /// How long the lock stays held unless renewed, in whole seconds from
    /// 1 s to 3600 s. Default: the sidecar's (15 s).
    pub lease_duration: Option<Duration>,
}

impl TryLockOptions {
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    pub fn lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = Some(lease_duration);
        self
    }
}

/// A lock taken with [`Client::try_lock`]: held for its lease unless you
/// renew it, and given back with [`LeasedLock::release`]. Its lost signal
/// fires when the last `valid_for` runs out without a renewal, by this
/// process's monotonic clock, or when a renewal is refused.
///
/// Dropping it without releasing releases it in the background (best
/// effort); release it explicitly to know that it happened. Its calls have
/// the deadline of the client it came from, or of [`LeasedLock::with_timeout`].
#[derive(Debug)]
#[must_use = "dropping a leased lock releases it"]
pub struct LeasedLock {
    name: String,
    token: i64,
    holder: String,
    lease_duration: Duration,
    /// Its lease and what watches it; dropping it releases the lock.
    hold: LeaseHold,
}

/// A lock as the sidecar sees it, from [`Client::get_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// True while some holder has the lock and its lease has not expired.
    pub held: bool,
    /// The current or last holder's name.
    pub holder: String,
    /// The current holder's token, or the last one granted; zero if the lock
    /// was never acquired.
    pub fencing_token: i64,
    /// When the current holder acquired it, by the writing sidecar's clock.
    pub acquire_time: Option<SystemTime>,
    pub lease_duration: Duration,
    /// How long until the lease expires unless renewed.
    pub remaining: Duration,
    /// The sidecar process that holds it, as written in the Lease.
    pub holder_identity: String,
}

impl Client {
    /// Makes one attempt to take the lock, without waiting. A lock held by
    /// someone else is [`Error::NotFree`], naming the holder. Bounded by
    /// [`Client::timeout`], like every call below.
    pub async fn try_lock(&self, name: &str) -> Result<LeasedLock, Error> {
        self.try_lock_with(name, TryLockOptions::default()).await
    }

    /// [`Client::try_lock`] with options.
    pub async fn try_lock_with(&self, name: &str, options: TryLockOptions) -> Result<LeasedLock, Error> {
        let message = proto::TryAcquireRequest {
            name: name.to_owned(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("try-lock {name}"),
            self.locks.clone().try_acquire(request(message, timeout)),
        )
        .await?;
        if !response.acquired {
            return Err(Error::NotFree {
                name: name.to_owned(),
                holder: response.holder,
                fencing_token: response.fencing_token,
            });
        }
        let hold = Hold::Lock {
            name: name.to_owned(),
            token: response.fencing_token,
        };
        Ok(LeasedLock {
            name: name.to_owned(),
            token: response.fencing_token,
            holder: response.holder,
            lease_duration: from_proto_duration(response.lease_duration),
            hold: LeaseHold::watch(self, hold, from_proto_duration(response.valid_for)),
        })
    }

    /// Extends a lease-held lock by another lease (optionally a new one),
    /// counted from now, and returns how long the holder may act. A token
    /// that is not the current one is [`Error::NotHeld`].
    pub async fn renew(&self, name: &str, token: i64, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        let message = proto::RenewRequest {
            name: name.to_owned(),
            fencing_token: token,
            lease_duration: optional_duration(lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("renew lock {name} (token {token})"),
            self.locks.clone().renew(request(message, timeout)),
        )
        .await?;
        Ok(from_proto_duration(response.valid_for))
    }

    /// Gives back a lock by its token, and returns once the sidecar has
    /// released it; the next waiter gets it at once. A token that is not the
    /// current one (also one released before) is [`Error::NotHeld`]. For a
    /// lock held with [`Client::lock`], use [`crate::Lock::release`].
    pub async fn release(&self, name: &str, token: i64) -> Result<(), Error> {
        let message = proto::ReleaseRequest {
            name: name.to_owned(),
            fencing_token: token,
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("release lock {name} (token {token})"),
            self.locks.clone().release(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// Who holds the lock. An unheld lock is not an error: `held` is false.
    pub async fn get_lock(&self, name: &str, consistency: ReadConsistency) -> Result<LockInfo, Error> {
        let message = proto::GetLockRequest {
            name: name.to_owned(),
            consistency: consistency.to_proto(),
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("get lock {name}"),
            self.locks.clone().get_lock(request(message, timeout)),
        )
        .await?;
        Ok(LockInfo {
            held: response.held,
            holder: response.holder,
            fencing_token: response.fencing_token,
            acquire_time: from_proto_time(response.acquire_time),
            lease_duration: from_proto_duration(response.lease_duration),
            remaining: from_proto_duration(response.remaining),
            holder_identity: response.holder_identity,
        })
    }
}

impl LeasedLock {
    lease_hold_api!("lock", "strictly greater than every earlier token of this lock");
}
