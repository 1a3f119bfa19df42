// Counting semaphores: up to N holds of a name at once, across every sidecar
// of the namespace. A permit is held as a lock is, by the same code
// (`crate::hold`): `Client::acquire_permit` waits for one held by its stream
// (`Permit`, a guard like `Lock`), `Client::try_acquire_permit` takes one for
// a lease (`LeasedPermit`, like `LeasedLock`).
use std::time::{Duration, SystemTime};

use crate::client::{
    bounded, default_name, from_proto_duration, from_proto_time, optional_duration, request, to_proto_duration,
};
use crate::hold::{Hold, LeaseHold, StreamHold, await_grant, lease_hold_api, stream_hold_api};
use crate::proto;
use crate::{Client, Error, LockOptions, ReadConsistency, TryLockOptions};

/// A held permit of a semaphore. The sidecar renews it until you call
/// [`Permit::release`] or drop the guard; either gives it back and the next
/// waiter gets it at once.
///
/// Act only while it is not lost, and pass [`Permit::token`] to every
/// resource you write to. [`Permit::lost`] resolves the moment you must stop:
/// the sidecar reported the permit lost, its stream ended, or no heartbeat
/// arrived before the last one ran out (this client's own deadline, on the
/// monotonic clock, which holds even if the sidecar froze).
#[derive(Debug)]
#[must_use = "dropping the guard gives the permit back at once"]
pub struct Permit {
    name: String,
    hold_id: String,
    token: i64,
    holder: String,
    acquire_time: Option<SystemTime>,
    lease_duration: Duration,
    permits: u32,
    /// The stream and what follows it; dropping it gives the permit back.
    hold: StreamHold,
}

/// A permit taken with [`Client::try_acquire_permit`]: held for its lease
/// unless you renew it, and given back with [`LeasedPermit::release`], as a
/// [`crate::LeasedLock`]. Its lost signal fires when the last `valid_for`
/// runs out without a renewal, by this process's monotonic clock, or when a
/// renewal is refused. Dropping it without releasing releases it in the
/// background (best effort).
#[derive(Debug)]
#[must_use = "dropping a leased permit releases it"]
pub struct LeasedPermit {
    name: String,
    hold_id: String,
    token: i64,
    holder: String,
    lease_duration: Duration,
    permits: u32,
    /// Its lease and what watches it; dropping it releases the permit.
    hold: LeaseHold,
}

/// One hold of a semaphore's permit, as the sidecar sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitHolder {
    /// The holder's name.
    pub holder: String,
    /// The sidecar process that holds it.
    pub holder_identity: String,
    /// The hold's fencing token; zero for a hold of another sidecar, whose
    /// token this one does not report.
    pub fencing_token: i64,
    /// When the hold began, by the writing sidecar's clock.
    pub acquire_time: Option<SystemTime>,
    pub lease_duration: Duration,
    /// How long until the hold's lease expires unless renewed.
    pub remaining: Duration,
}

/// A semaphore as the sidecar sees it, from [`Client::get_semaphore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemaphoreInfo {
    /// N; zero if the semaphore was never used.
    pub permits: u32,
    /// The holds whose lease has not expired, as the sidecar observed them.
    pub holders: Vec<PermitHolder>,
    /// The last fencing token granted; zero if none was.
    pub fencing_token: i64,
    /// The sidecars waiting for a permit, in the order they will be served.
    pub waiting_daemons: Vec<String>,
}

impl PermitHolder {
    fn from_proto(holders: Vec<proto::PermitHolder>) -> Vec<PermitHolder> {
        holders
            .into_iter()
            .map(|h| PermitHolder {
                holder: h.holder,
                holder_identity: h.holder_identity,
                fencing_token: h.fencing_token,
                acquire_time: from_proto_time(h.acquire_time),
                lease_duration: from_proto_duration(h.lease_duration),
                remaining: from_proto_duration(h.remaining),
            })
            .collect()
    }
}

/// N as the proto carries it; the sidecar checks the range (1 to 32).
fn permits_to_proto(permits: u32) -> Result<i32, Error> {
    i32::try_from(permits).map_err(|_| Error::invalid("permits", format!("{permits} is not from 1 to 32")))
}

impl Client {
    /// Waits for a permit of the semaphore `name`, which grants `permits`
    /// holds at once, and holds it until the guard is released or dropped:
    ///
    /// ```no_run
    /// # async fn run(client: metaparticle_sync::Client) -> Result<(), metaparticle_sync::Error> {
    /// let permit = client.acquire_permit("export", 3).await?;
    /// println!("fencing token {}", permit.token());
    /// permit.release().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Every caller of one name must ask with the same `permits` (1 to 32):
    /// another N fails with [`Error::PermitsMismatch`]. The wait is a lock's
    /// ([`Client::lock`]): at most the wait timeout
    /// ([`crate::DEFAULT_WAIT_TIMEOUT`] unless
    /// [`LockOptions::wait_timeout`] says otherwise), then
    /// [`Error::WaitTimeout`]; a deadline given with [`Client::with_timeout`]
    /// bounds it too. Dropping the future stops waiting.
    pub async fn acquire_permit(&self, name: &str, permits: u32) -> Result<Permit, Error> {
        self.acquire_permit_with(name, permits, LockOptions::default()).await
    }

    /// [`Client::acquire_permit`] with options.
    pub async fn acquire_permit_with(&self, name: &str, permits: u32, options: LockOptions) -> Result<Permit, Error> {
        let wait = options.wait_or_default();
        let message = proto::AcquirePermitRequest {
            name: name.to_owned(),
            permits: permits_to_proto(permits)?,
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
            wait_timeout: Some(to_proto_duration(wait, "wait_timeout")?),
        };
        let mut semaphores = self.semaphores.clone();
        let what = format!("a permit of semaphore {name}");
        let (stream, acquired) = await_grant(self, &what, wait, semaphores.acquire_permit(message)).await?;
        let hold = Hold::Permit {
            name: name.to_owned(),
            hold_id: acquired.hold_id.clone(),
            token: acquired.fencing_token,
        };
        Ok(Permit {
            name: name.to_owned(),
            hold_id: acquired.hold_id,
            token: acquired.fencing_token,
            holder: acquired.holder,
            acquire_time: from_proto_time(acquired.acquire_time),
            lease_duration: from_proto_duration(acquired.lease_duration),
            permits: u32::try_from(acquired.permits).unwrap_or(permits),
            hold: StreamHold::follow(self, hold, stream, from_proto_duration(acquired.valid_for)),
        })
    }

    /// Makes one attempt to take a permit, without waiting. Every permit held
    /// is [`Error::NoPermitFree`], listing the holders; another N is
    /// [`Error::PermitsMismatch`]. Bounded by [`Client::timeout`], like every
    /// call below.
    pub async fn try_acquire_permit(&self, name: &str, permits: u32) -> Result<LeasedPermit, Error> {
        self.try_acquire_permit_with(name, permits, TryLockOptions::default())
            .await
    }

    /// [`Client::try_acquire_permit`] with options.
    pub async fn try_acquire_permit_with(
        &self,
        name: &str,
        permits: u32,
        options: TryLockOptions,
    ) -> Result<LeasedPermit, Error> {
        let message = proto::TryAcquirePermitRequest {
            name: name.to_owned(),
            permits: permits_to_proto(permits)?,
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("try-acquire a permit of semaphore {name}"),
            self.semaphores.clone().try_acquire_permit(request(message, timeout)),
        )
        .await?;
        let acquired = match response.hold {
            Some(hold) if response.acquired => hold,
            _ => {
                return Err(Error::NoPermitFree {
                    name: name.to_owned(),
                    holders: PermitHolder::from_proto(response.holders),
                });
            }
        };
        let hold = Hold::Permit {
            name: name.to_owned(),
            hold_id: acquired.hold_id.clone(),
            token: acquired.fencing_token,
        };
        Ok(LeasedPermit {
            name: name.to_owned(),
            hold_id: acquired.hold_id,
            token: acquired.fencing_token,
            holder: acquired.holder,
            lease_duration: from_proto_duration(acquired.lease_duration),
            permits: u32::try_from(acquired.permits).unwrap_or(permits),
            hold: LeaseHold::watch(self, hold, from_proto_duration(acquired.valid_for)),
        })
    }

    /// Extends a permit taken with [`Client::try_acquire_permit`], by its
    /// hold id, by another lease (optionally a new one) counted from now, and
    /// returns how long the holder may act. A hold this sidecar does not have
    /// is [`Error::NotHeld`].
    pub async fn renew_permit(
        &self,
        name: &str,
        hold_id: &str,
        lease_duration: Option<Duration>,
    ) -> Result<Duration, Error> {
        let message = proto::RenewPermitRequest {
            name: name.to_owned(),
            hold_id: hold_id.to_owned(),
            lease_duration: optional_duration(lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("renew a permit of semaphore {name} (hold {hold_id})"),
            self.semaphores.clone().renew_permit(request(message, timeout)),
        )
        .await?;
        Ok(from_proto_duration(response.valid_for))
    }

    /// Gives a permit back by its hold id, and returns once the sidecar has;
    /// the next waiter gets it at once. The hold may be a leased permit's or
    /// a [`Permit`]'s, whose stream then ends (its holder is told it is
    /// lost). A hold this sidecar does not have (also one released before) is
    /// [`Error::NotHeld`].
    pub async fn release_permit(&self, name: &str, hold_id: &str) -> Result<(), Error> {
        let message = proto::ReleasePermitRequest {
            name: name.to_owned(),
            hold_id: hold_id.to_owned(),
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("release a permit of semaphore {name} (hold {hold_id})"),
            self.semaphores.clone().release_permit(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// How the semaphore's permits are held. A semaphore never used is not
    /// an error: `permits` is zero.
    pub async fn get_semaphore(&self, name: &str, consistency: ReadConsistency) -> Result<SemaphoreInfo, Error> {
        let message = proto::GetSemaphoreRequest {
            name: name.to_owned(),
            consistency: consistency.to_proto(),
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("get semaphore {name}"),
            self.semaphores.clone().get_semaphore(request(message, timeout)),
        )
        .await?;
        Ok(SemaphoreInfo {
            permits: u32::try_from(response.permits).unwrap_or(0),
            holders: PermitHolder::from_proto(response.holders),
            fencing_token: response.fencing_token,
            waiting_daemons: response.waiting_daemons,
        })
    }
}

impl Permit {
    stream_hold_api!("permit", "strictly greater than every earlier token of this semaphore");

    /// Names this hold in [`Client::release_permit`]; opaque.
    pub fn hold_id(&self) -> &str {
        &self.hold_id
    }

    /// The semaphore's N, as the sidecar granted it.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Gives the permit back and returns once the sidecar has, so the next
    /// waiter may be granted it; the same as [`crate::Lock::release`]: the
    /// signal ends normally from the call on, and it waits at most its
    /// deadline ([`Permit::timeout`]) or the end of the last promise
    /// ([`Permit::valid_for`]), whichever comes first.
    pub async fn release(mut self) -> Result<(), Error> {
        self.hold.release().await
    }
}

impl LeasedPermit {
    lease_hold_api!("permit", "strictly greater than every earlier token of this semaphore");

    /// Names this hold in [`Client::renew_permit`] and
    /// [`Client::release_permit`]; opaque.
    pub fn hold_id(&self) -> &str {
        &self.hold_id
    }

    /// The semaphore's N, as the sidecar granted it.
    pub fn permits(&self) -> u32 {
        self.permits
    }
}
