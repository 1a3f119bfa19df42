// The connection to the sidecar, and what every call shares: its deadline,
// names by default, durations and read consistency.
use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::Error;
use crate::proto::election_service_client::ElectionServiceClient;
use crate::proto::lock_service_client::LockServiceClient;
use crate::proto::rw_lock_service_client::RwLockServiceClient;
use crate::proto::semaphore_service_client::SemaphoreServiceClient;

/// Where the sidecar listens unless `MSYNC_ADDRESS` says otherwise.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:13131";

/// How long one call may take unless [`Client::with_timeout`] says
/// otherwise: every unary call (try-lock, renew, release, get-lock,
/// get-leader, proclaim, resign, a semaphore's and a read-write lock's
/// try-acquire, renew, release and get), and the release of a held lock,
/// permit or read-write hold. A call that runs out fails with
/// [`Error::DeadlineExceeded`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Client::lock`] waits for the lock, [`Client::acquire_permit`]
/// for a permit and [`Client::acquire_rwlock`] for a read-write hold, unless
/// [`crate::LockOptions::wait_timeout`] says otherwise. A wait that runs out
/// fails with [`Error::WaitTimeout`].
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How much longer than the wait timeout [`Client::lock`] waits for the
/// sidecar to say that the wait ran out, before this client says so itself
/// (the sidecar may be frozen or unreachable).
pub const WAIT_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// How often the channel pings the sidecar (HTTP/2 keepalive), also while no
/// call is open, so that a frozen or unreachable sidecar fails the streams
/// that have no deadline of their own (a campaign, an observation).
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(10);

/// How long a keepalive ping may go unanswered before the connection is
/// closed and its open calls fail with [`Error::Unavailable`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to one sidecar. Cloning it is cheap and shares the
/// connection; it is safe to use from many tasks at once. Locks, leases and
/// campaigns keep the connection open while they last; it closes when the
/// last of them and of the clones is gone.
///
/// Every call is bounded by a deadline: [`DEFAULT_CALL_TIMEOUT`] unless
/// [`Client::with_timeout`] gives another. Locks, leases and campaigns made
/// through a client keep its deadline for their own calls.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) locks: LockServiceClient<Channel>,
    pub(crate) elections: ElectionServiceClient<Channel>,
    pub(crate) semaphores: SemaphoreServiceClient<Channel>,
    pub(crate) rwlocks: RwLockServiceClient<Channel>,
    /// The caller's own deadline for each call, if it gave one.
    timeout: Option<Duration>,
}

impl Client {
    /// A client of the sidecar at `$MSYNC_ADDRESS`, else [`DEFAULT_ADDRESS`].
    /// It connects on the first call, so the sidecar need not be up yet.
    ///
    /// Call it inside a Tokio runtime: the connection runs on it.
    pub fn new() -> Result<Client, Error> {
        let address = std::env::var("MSYNC_ADDRESS")
            .ok()
            .filter(|address| !address.is_empty());
        Client::with_address(address.as_deref().unwrap_or(DEFAULT_ADDRESS))
    }

    /// A client of the sidecar at `address`, `host:port` (for example
    /// `127.0.0.1:13131` or `[::1]:13131`), over plaintext HTTP/2 as the
    /// sidecar listens on loopback.
    /// The channel pings the sidecar every [`KEEPALIVE_TIME`], also while
    /// idle, and gives up on it after [`KEEPALIVE_TIMEOUT`] without an answer.
    pub fn with_address(address: &str) -> Result<Client, Error> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|err| Error::invalid("address", format!("{address:?} is not host:port: {err}")))?
            .http2_keep_alive_interval(KEEPALIVE_TIME)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        Ok(Client::with_channel(endpoint.connect_lazy()))
    }

    /// A client over a channel you configured yourself (TLS, a Unix socket).
    /// Give it keepalive as [`Client::with_address`] does, or a campaign or
    /// observation on a frozen sidecar waits until the sidecar runs again.
    pub fn with_channel(channel: Channel) -> Client {
        Client {
            locks: LockServiceClient::new(channel.clone()),
            elections: ElectionServiceClient::new(channel.clone()),
            semaphores: SemaphoreServiceClient::new(channel.clone()),
            rwlocks: RwLockServiceClient::new(channel),
            timeout: None,
        }
    }

    /// This client (sharing its connection) with `timeout` as the deadline
    /// of each call made through it, instead of [`DEFAULT_CALL_TIMEOUT`]:
    ///
    /// ```no_run
    /// # async fn run(client: metaparticle_sync::Client) -> Result<(), metaparticle_sync::Error> {
    /// use std::time::Duration;
    /// let info = client.with_timeout(Duration::from_secs(2)).get_lock("db", Default::default()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// For [`Client::lock`] ([`Client::acquire_permit`],
    /// [`Client::acquire_rwlock`]) it also bounds the wait, besides the own
    /// wait timeout; running out of it is then [`Error::DeadlineExceeded`].
    /// Campaigns and observations have no overall deadline: only their
    /// proclaim and resign calls do.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// The deadline of each call made through this client.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_CALL_TIMEOUT)
    }

    /// The deadline the caller gave with [`Client::with_timeout`], if any.
    pub(crate) fn explicit_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// A request that tells the sidecar its deadline (`grpc-timeout`).
pub(crate) fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Awaits one unary call for at most `timeout` on this process's monotonic
/// clock, whether or not the sidecar answers: `what` names the call in the
/// error.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: impl FnOnce() -> String,
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T, Error> {
    let deadline = Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(call_error(status, deadline, timeout, what)),
        Err(_) => Err(Error::deadline_exceeded(what(), timeout)),
    }
}

/// The error of a call that failed with `status`: tonic's own timer for the
/// deadline sent in `grpc-timeout` ends a call as CANCELLED, which is the
/// call's deadline when that has passed.
pub(crate) fn call_error(status: Status, deadline: Instant, timeout: Duration, what: impl FnOnce() -> String) -> Error {
    if status.code() == Code::Cancelled && Instant::now() >= deadline {
        Error::deadline_exceeded(what(), timeout)
    } else {
        status.into()
    }
}

/// Where a read (`get_lock`, `get_leader`, `get_semaphore`, `get_rwlock`) is
/// served from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadConsistency {
    /// The sidecar's watch cache: no request to the API server, possibly a
    /// few milliseconds behind.
    #[default]
    Cached,
    /// A fresh read of the Lease from the API server.
    Fresh,
}

impl ReadConsistency {
    pub(crate) fn to_proto(self) -> i32 {
        match self {
            ReadConsistency::Cached => crate::proto::ReadConsistency::Cached as i32,
            ReadConsistency::Fresh => crate::proto::ReadConsistency::Fresh as i32,
        }
    }
}

/// The first of the environment variables that is set, else host/pid: what
/// others see as the holder or leader.
pub(crate) fn default_name(variables: &[&str]) -> String {
    for variable in variables {
        if let Ok(value) = std::env::var(variable)
            && !value.is_empty()
        {
            return value;
        }
    }
    // Linux's own record of the host name; elsewhere the usual variable.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}/{}", std::process::id())
}

/// A duration as the proto wants it; `field` names it if it does not fit.
pub(crate) fn to_proto_duration(duration: Duration, field: &str) -> Result<prost_types::Duration, Error> {
    prost_types::Duration::try_from(duration)
        .map_err(|err| Error::invalid(field, format!("{duration:?} does not fit: {err}")))
}

pub(crate) fn optional_duration(
    duration: Option<Duration>,
    field: &str,
) -> Result<Option<prost_types::Duration>, Error> {
    duration.map(|d| to_proto_duration(d, field)).transpose()
}

/// A duration from the sidecar; unset or negative is zero.
pub(crate) fn from_proto_duration(duration: Option<prost_types::Duration>) -> Duration {
    duration
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::ZERO)
}

pub(crate) fn from_proto_time(time: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    time.and_then(|t| SystemTime::try_from(t).ok())
}
