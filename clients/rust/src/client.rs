// The connection to the sidecar, and what every call shares: names by
// default, durations and read consistency.
use std::time::{Duration, SystemTime};

use tonic::transport::{Channel, Endpoint};

use crate::Error;
use crate::proto::election_service_client::ElectionServiceClient;
use crate::proto::lock_service_client::LockServiceClient;

/// Where the sidecar listens unless `MSYNC_ADDRESS` says otherwise.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:13131";

/// A connection to one sidecar. Cloning it is cheap and shares the
/// connection; it is safe to use from many tasks at once. Locks, leases and
/// campaigns keep the connection open while they last; it closes when the
/// last of them and of the clones is gone.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) locks: LockServiceClient<Channel>,
    pub(crate) elections: ElectionServiceClient<Channel>,
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
    pub fn with_address(address: &str) -> Result<Client, Error> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|err| Error::invalid("address", format!("{address:?} is not host:port: {err}")))?;
        Ok(Client::with_channel(endpoint.connect_lazy()))
    }

    /// A client over a channel you configured yourself (TLS, timeouts,
    /// a Unix socket).
    pub fn with_channel(channel: Channel) -> Client {
        Client {
            locks: LockServiceClient::new(channel.clone()),
            elections: ElectionServiceClient::new(channel),
        }
    }
}

/// Where a read (`get_lock`, `get_leader`) is served from.
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
