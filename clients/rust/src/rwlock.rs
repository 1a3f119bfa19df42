// Read-write locks: many shared holds of a name at once, or one exclusive
// hold, across every sidecar of the namespace. A hold is kept as a lock's or a
// permit's is, by the same code (`crate::hold`): `Client::acquire_rwlock`
// waits for one kept by its stream (`RwHold`, a guard like `Lock`),
// `Client::try_acquire_rwlock` takes one for a lease (`LeasedRwHold`, like
// `LeasedLock`). Renewals and releases name a hold by its id, never by its
// token: two shared holds may report the same token.
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::client::{
    bounded, default_name, from_proto_duration, from_proto_time, optional_duration, request, to_proto_duration,
};
use crate::hold::{Hold, LeaseHold, StreamHold, await_grant, lease_hold_api, stream_hold_api};
use crate::proto;
use crate::{Client, Error, LockOptions, ReadConsistency, TryLockOptions};

/// How a read-write lock is held, or asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A read hold: other shared holds at once, no exclusive one. Its fencing
    /// token is the last exclusive hold's (0 if none).
    Shared,
    /// A write hold: no other hold of the name at once. Its fencing token is
    /// strictly greater than every earlier exclusive hold's. The default, as
    /// the sidecar's when a request names no mode.
    #[default]
    Exclusive,
}

impl Mode {
    /// `"shared"` or `"exclusive"`, the same in every client of this project.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Exclusive => "exclusive",
        }
    }

    fn to_proto(self) -> i32 {
        match self {
            Mode::Shared => proto::LockMode::Shared as i32,
            Mode::Exclusive => proto::LockMode::Exclusive as i32,
        }
    }

    /// The mode the sidecar reported; `None` when it says none (not held).
    fn from_proto(mode: i32) -> Option<Mode> {
        match proto::LockMode::try_from(mode) {
            Ok(proto::LockMode::Shared) => Some(Mode::Shared),
            Ok(proto::LockMode::Exclusive) => Some(Mode::Exclusive),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A held read-write lock, shared or exclusive. The sidecar renews the hold
/// until you call [`RwHold::release`] or drop the guard; either gives it
/// back, and the holds waiting for it are granted at once.
///
/// Act only while it is not lost, and pass [`RwHold::token`] to every
/// resource you touch: an exclusive hold's token fences writes, a shared
/// hold's says which write it reads after. [`RwHold::lost`] resolves the
/// moment you must stop: the sidecar reported the hold lost, its stream
/// ended, or no heartbeat arrived before the last one ran out (this client's
/// own deadline, on the monotonic clock, which holds even if the sidecar
/// froze).
#[derive(Debug)]
#[must_use = "dropping the guard gives the hold back at once"]
pub struct RwHold {
    name: String,
    hold_id: String,
    mode: Mode,
    token: i64,
    holder: String,
    acquire_time: Option<SystemTime>,
    lease_duration: Duration,
    /// The stream and what follows it; dropping it gives the hold back.
    hold: StreamHold,
}

/// A read-write hold taken with [`Client::try_acquire_rwlock`]: held for its
/// lease unless you renew it, and given back with [`LeasedRwHold::release`],
/// as a [`crate::LeasedLock`]. Its lost signal fires when the last
/// `valid_for` runs out without a renewal, by this process's monotonic
/// clock, or when a renewal is refused. Dropping it without releasing
/// releases it in the background (best effort).
#[derive(Debug)]
#[must_use = "dropping a leased hold releases it"]
pub struct LeasedRwHold {
    name: String,
    hold_id: String,
    mode: Mode,
    token: i64,
    holder: String,
    lease_duration: Duration,
    /// Its lease and what watches it; dropping it releases the hold.
    hold: LeaseHold,
}

/// The shared holds of one sidecar, which share one seat in the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSeat {
    /// The sidecar process whose clients hold the lock shared.
    pub holder_identity: String,
    /// The holder name of that sidecar's first reader.
    pub holder: String,
    /// How many shared holds that sidecar has.
    pub readers: u32,
    /// How long until the seat's lease expires unless renewed.
    pub remaining: Duration,
}

/// A read-write lock as the sidecar sees it, from [`Client::get_rwlock`]
/// (or in [`Error::RwLockNotFree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RwLockInfo {
    /// True while some hold's lease has not expired.
    pub held: bool,
    /// How it is held; `None` when it is not.
    pub mode: Option<Mode>,
    /// The exclusive holder's name, when held exclusive; else empty.
    pub holder: String,
    /// The exclusive holder's sidecar process, when held exclusive.
    pub holder_identity: String,
    /// The token of the current or last exclusive hold; zero if it was never
    /// held exclusive.
    pub fencing_token: i64,
    /// When the exclusive holder acquired it, by the writing sidecar's clock.
    pub acquire_time: Option<SystemTime>,
    /// How long until the exclusive hold's lease expires unless renewed.
    pub remaining: Duration,
    /// One seat per sidecar whose clients hold it shared.
    pub readers: Vec<ReaderSeat>,
    /// The sidecars waiting, in the order they will be served.
    pub waiting_daemons: Vec<String>,
}

impl RwLockInfo {
    /// The shared holds, summed over every sidecar's seat.
    pub fn reader_count(&self) -> u32 {
        self.readers.iter().map(|seat| seat.readers).sum()
    }

    fn from_proto(state: proto::GetRwLockResponse) -> RwLockInfo {
        RwLockInfo {
            held: state.held,
            mode: Mode::from_proto(state.mode),
            holder: state.holder,
            holder_identity: state.holder_identity,
            fencing_token: state.fencing_token,
            acquire_time: from_proto_time(state.acquire_time),
            remaining: from_proto_duration(state.remaining),
            readers: state
                .readers
                .into_iter()
                .map(|seat| ReaderSeat {
                    holder_identity: seat.holder_identity,
                    holder: seat.holder,
                    readers: u32::try_from(seat.readers).unwrap_or(0),
                    remaining: from_proto_duration(seat.remaining),
                })
                .collect(),
            waiting_daemons: state.waiting_daemons,
        }
    }
}

/// The mode of a grant, as the sidecar says (else the one asked for), and
/// the hold it names.
fn granted(name: &str, asked: Mode, acquired: &proto::RwLockAcquired) -> (Mode, Hold) {
    let mode = Mode::from_proto(acquired.mode).unwrap_or(asked);
    let hold = Hold::RwLock {
        name: name.to_owned(),
        hold_id: acquired.hold_id.clone(),
        mode,
        token: acquired.fencing_token,
    };
    (mode, hold)
}

impl Client {
    /// Waits until the read-write lock `name` can be held in `mode`, and
    /// holds it so until the guard is released or dropped:
    ///
    /// ```no_run
    /// # async fn run(client: metaparticle_sync::Client) -> Result<(), metaparticle_sync::Error> {
    /// use metaparticle_sync::Mode;
    /// let reader = client.acquire_rwlock("catalog", Mode::Shared).await?;
    /// println!("reading after the write of token {}", reader.token());
    /// reader.release().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Many shared holds at once, or one exclusive hold; a reader asking
    /// after a waiting writer waits behind it. The wait is a lock's
    /// ([`Client::lock`]): at most the wait timeout
    /// ([`crate::DEFAULT_WAIT_TIMEOUT`], 5 minutes, unless
    /// [`LockOptions::wait_timeout`] says otherwise), then
    /// [`Error::WaitTimeout`]; a deadline given with [`Client::with_timeout`]
    /// bounds it too, and running out of that is [`Error::DeadlineExceeded`].
    /// Dropping the future stops waiting.
    pub async fn acquire_rwlock(&self, name: &str, mode: Mode) -> Result<RwHold, Error> {
        self.acquire_rwlock_with(name, mode, LockOptions::default()).await
    }

    /// [`Client::acquire_rwlock`] with options.
    pub async fn acquire_rwlock_with(&self, name: &str, mode: Mode, options: LockOptions) -> Result<RwHold, Error> {
        let wait = options.wait_or_default();
        let message = proto::AcquireRwLockRequest {
            name: name.to_owned(),
            mode: mode.to_proto(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
            wait_timeout: Some(to_proto_duration(wait, "wait_timeout")?),
        };
        let mut rwlocks = self.rwlocks.clone();
        let what = format!("a {mode} hold of read-write lock {name}");
        let (stream, acquired) = await_grant(self, &what, wait, rwlocks.acquire_rw_lock(message)).await?;
        let (mode, hold) = granted(name, mode, &acquired);
        Ok(RwHold {
            name: name.to_owned(),
            mode,
            acquire_time: from_proto_time(acquired.acquire_time),
            lease_duration: from_proto_duration(acquired.lease_duration),
            hold: StreamHold::follow(self, hold, stream, from_proto_duration(acquired.valid_for)),
            hold_id: acquired.hold_id,
            token: acquired.fencing_token,
            holder: acquired.holder,
        })
    }

    /// Makes one attempt to hold the read-write lock in `mode`, without
    /// waiting, for a lease. A lock that cannot be held so now is
    /// [`Error::RwLockNotFree`], with how it is held. Bounded by
    /// [`Client::timeout`], like every call below.
    pub async fn try_acquire_rwlock(&self, name: &str, mode: Mode) -> Result<LeasedRwHold, Error> {
        self.try_acquire_rwlock_with(name, mode, TryLockOptions::default())
            .await
    }

    /// [`Client::try_acquire_rwlock`] with options.
    pub async fn try_acquire_rwlock_with(
        &self,
        name: &str,
        mode: Mode,
        options: TryLockOptions,
    ) -> Result<LeasedRwHold, Error> {
        let message = proto::TryAcquireRwLockRequest {
            name: name.to_owned(),
            mode: mode.to_proto(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("try-acquire a {mode} hold of read-write lock {name}"),
            self.rwlocks.clone().try_acquire_rw_lock(request(message, timeout)),
        )
        .await?;
        let acquired = match response.hold {
            Some(acquired) if response.acquired => acquired,
            _ => {
                return Err(Error::RwLockNotFree {
                    name: name.to_owned(),
                    state: Box::new(RwLockInfo::from_proto(response.state.unwrap_or_default())),
                });
            }
        };
        let (mode, hold) = granted(name, mode, &acquired);
        Ok(LeasedRwHold {
            name: name.to_owned(),
            mode,
            lease_duration: from_proto_duration(acquired.lease_duration),
            hold: LeaseHold::watch(self, hold, from_proto_duration(acquired.valid_for)),
            hold_id: acquired.hold_id,
            token: acquired.fencing_token,
            holder: acquired.holder,
        })
    }

    /// Extends a read-write hold taken with [`Client::try_acquire_rwlock`],
    /// by its hold id, by another lease (optionally a new one) counted from
    /// now, and returns how long the holder may act. A hold this sidecar does
    /// not have is [`Error::NotHeld`].
    pub async fn renew_rwlock(
        &self,
        name: &str,
        hold_id: &str,
        lease_duration: Option<Duration>,
    ) -> Result<Duration, Error> {
        let message = proto::RenewRwLockRequest {
            name: name.to_owned(),
            hold_id: hold_id.to_owned(),
            lease_duration: optional_duration(lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("renew a hold of read-write lock {name} (hold {hold_id})"),
            self.rwlocks.clone().renew_rw_lock(request(message, timeout)),
        )
        .await?;
        Ok(from_proto_duration(response.valid_for))
    }

    /// Gives a read-write hold back by its hold id, and returns once the
    /// sidecar has; the holds waiting for it are granted at once. The hold
    /// may be a [`LeasedRwHold`]'s or an [`RwHold`]'s, whose stream then ends
    /// (its holder is told it is lost). A hold this sidecar does not have
    /// (also one released before) is [`Error::NotHeld`].
    pub async fn release_rwlock(&self, name: &str, hold_id: &str) -> Result<(), Error> {
        let message = proto::ReleaseRwLockRequest {
            name: name.to_owned(),
            hold_id: hold_id.to_owned(),
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("release a hold of read-write lock {name} (hold {hold_id})"),
            self.rwlocks.clone().release_rw_lock(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// How the read-write lock is held and who waits. A lock never used is
    /// not an error: `held` is false and `mode` `None`.
    pub async fn get_rwlock(&self, name: &str, consistency: ReadConsistency) -> Result<RwLockInfo, Error> {
        let message = proto::GetRwLockRequest {
            name: name.to_owned(),
            consistency: consistency.to_proto(),
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("get read-write lock {name}"),
            self.rwlocks.clone().get_rw_lock(request(message, timeout)),
        )
        .await?;
        Ok(RwLockInfo::from_proto(response))
    }
}

impl RwHold {
    stream_hold_api!(
        "hold",
        "for an exclusive hold, strictly greater than every earlier exclusive hold's of this lock; for a shared hold, the last exclusive hold's (0 if none), which other shared holds may report too"
    );

    /// Names this hold in [`Client::release_rwlock`]; opaque, and unlike the
    /// token, never shared with another hold.
    pub fn hold_id(&self) -> &str {
        &self.hold_id
    }

    /// How the lock is held, as the sidecar granted it.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Gives the hold back and returns once the sidecar has, so the holds
    /// waiting for it may be granted; the same as [`crate::Lock::release`]:
    /// the signal ends normally from the call on, and it waits at most its
    /// deadline ([`RwHold::timeout`]) or the end of the last promise
    /// ([`RwHold::valid_for`]), whichever comes first.
    pub async fn release(mut self) -> Result<(), Error> {
        self.hold.release().await
    }
}

impl LeasedRwHold {
    lease_hold_api!(
        "hold",
        "for an exclusive hold, strictly greater than every earlier exclusive hold's of this lock; for a shared hold, the last exclusive hold's (0 if none), which other shared holds may report too"
    );

    /// Names this hold in [`Client::renew_rwlock`] and
    /// [`Client::release_rwlock`]; opaque, and unlike the token, never shared
    /// with another hold.
    pub fn hold_id(&self) -> &str {
        &self.hold_id
    }

    /// How the lock is held, as the sidecar granted it.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_mode_is_exclusive_as_on_the_sidecar_and_an_unknown_one_is_none() {
        assert_eq!(Mode::default(), Mode::Exclusive);
        assert_eq!(Mode::from_proto(proto::LockMode::Unspecified as i32), None);
        assert_eq!(Mode::from_proto(7), None);
        for mode in [Mode::Shared, Mode::Exclusive] {
            assert_eq!(Mode::from_proto(mode.to_proto()), Some(mode));
        }
        assert_eq!(
            (Mode::Shared.to_string(), Mode::Exclusive.as_str()),
            ("shared".to_owned(), "exclusive")
        );
    }

    #[test]
    fn a_refused_try_acquire_reports_the_lock_as_the_sidecar_saw_it() {
        let seat = |readers| proto::ReaderSeat {
            holder_identity: "sidecar-a".into(),
            holder: "r".into(),
            readers,
            remaining: None,
        };
        let state = RwLockInfo::from_proto(proto::GetRwLockResponse {
            held: true,
            mode: proto::LockMode::Shared as i32,
            fencing_token: 4,
            readers: vec![seat(2), seat(3)],
            ..Default::default()
        });
        assert_eq!(
            (state.mode, state.reader_count(), state.fencing_token),
            (Some(Mode::Shared), 5, 4)
        );
        let error = Error::RwLockNotFree {
            name: "catalog".into(),
            state: Box::new(state),
        };
        assert_eq!(error.code(), tonic::Code::FailedPrecondition);
        assert_eq!(error.to_string(), "read-write lock catalog is held shared");
    }
}
