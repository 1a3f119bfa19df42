// The one error type of the crate, and the one place that turns a gRPC status
// into it: by its code and the standard details the sidecar attaches
// (google.rpc.ErrorInfo for the reason, google.rpc.BadRequest for the field).
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The `domain` of the sidecar's `google.rpc.ErrorInfo`.
const ERROR_DOMAIN: &str = "sync.metaparticle.io";

/// A call the sidecar refused or could not serve, or a request this client
/// would not send. Each variant means one thing; match on it. [`Error::code`]
/// gives the gRPC status code of every variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was malformed (`INVALID_ARGUMENT`); `field` names the
    /// request field at fault, from the `google.rpc.BadRequest` the sidecar
    /// attaches (or this client's own check).
    #[error("invalid argument: {message}")]
    InvalidArgument { field: Option<String>, message: String },

    /// The fencing token or term is not the current one, or the hold id (of
    /// a permit, of a read-write hold) is not one this sidecar has, so the
    /// caller does not hold what it named (`FAILED_PRECONDITION`).
    #[error("not held: {message}")]
    NotHeld { message: String },

    /// The Lease of that name exists but this sidecar does not manage it
    /// (`FAILED_PRECONDITION`, reason `FOREIGN_LEASE`).
    #[error("foreign lease: {message}")]
    ForeignLease { message: String },

    /// A try-lock found the lock held by someone else.
    #[error("lock {name} is held by {holder} (fencing token {fencing_token})")]
    NotFree {
        name: String,
        /// The current holder's name.
        holder: String,
        /// The current holder's fencing token.
        fencing_token: i64,
    },

    /// A semaphore's request asked for another number of permits than the
    /// semaphore has (`FAILED_PRECONDITION`, reason `PERMITS_MISMATCH`);
    /// `field` names the request field at fault (`permits`), from the
    /// `google.rpc.BadRequest` the sidecar attaches. Nothing is held.
    #[error("permits mismatch: {message}")]
    PermitsMismatch { field: Option<String>, message: String },

    /// A try-acquire of a semaphore's permit found every permit held.
    #[error("no permit of semaphore {name} is free: {} holders", holders.len())]
    NoPermitFree {
        name: String,
        /// Who holds the permits.
        holders: Vec<crate::PermitHolder>,
    },

    /// A try-acquire of a read-write lock could not hold it in the mode asked
    /// for: readers hold it and a writer asked, or a writer holds it (or
    /// waits ahead) and a reader asked. `state` is the lock as the sidecar saw
    /// it then.
    #[error("read-write lock {name} is held {}", state.mode.map_or("in another mode", crate::Mode::as_str))]
    RwLockNotFree {
        name: String,
        /// Who holds it and how; boxed, as it is far larger than the other
        /// variants.
        state: Box<crate::RwLockInfo>,
    },

    /// The lock was not granted within its wait timeout
    /// ([`crate::LockOptions::wait_timeout`]): the sidecar said so
    /// (`DEADLINE_EXCEEDED`, reason `WAIT_TIMEOUT`), or it did not answer
    /// within the wait timeout and [`crate::WAIT_TIMEOUT_GRACE`].
    #[error("wait timed out: {message}")]
    WaitTimeout { message: String },

    /// A call did not finish within its deadline ([`crate::Client::timeout`]),
    /// by this client's clock or the sidecar's (`DEADLINE_EXCEEDED`). The
    /// sidecar may be frozen or overloaded; what the call asked for may or
    /// may not have happened.
    #[error("deadline exceeded: {message}")]
    DeadlineExceeded { message: String },

    /// The sidecar, or the Kubernetes API server behind it, could not be
    /// reached (`UNAVAILABLE`). Worth retrying.
    #[error("unavailable: {message}")]
    Unavailable { message: String },

    /// The sidecar is shutting down (`UNAVAILABLE`, reason `SHUTTING_DOWN`).
    /// Worth retrying once it, or its replacement, is up.
    #[error("shutting down: {message}")]
    ShuttingDown { message: String },

    /// The sidecar's service account may not do what the call needed
    /// (`PERMISSION_DENIED`).
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },

    /// Any other status, for example `CANCELLED` or `INTERNAL`.
    #[error("{code:?}: {message}")]
    Other { code: Code, message: String },
}

impl Error {
    /// The gRPC status code this error stands for.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotHeld { .. }
            | Error::ForeignLease { .. }
            | Error::NotFree { .. }
            | Error::PermitsMismatch { .. }
            | Error::NoPermitFree { .. }
            | Error::RwLockNotFree { .. } => Code::FailedPrecondition,
            Error::WaitTimeout { .. } | Error::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Error::Unavailable { .. } | Error::ShuttingDown { .. } => Code::Unavailable,
            Error::PermissionDenied { .. } => Code::PermissionDenied,
            Error::Other { code, .. } => *code,
        }
    }

    /// The request field at fault, for [`Error::InvalidArgument`] and
    /// [`Error::PermitsMismatch`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidArgument { field, .. } | Error::PermitsMismatch { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub(crate) fn deadline_exceeded(what: String, timeout: Duration) -> Self {
        Error::DeadlineExceeded {
            message: format!("{what}: no answer from the sidecar within {timeout:?}"),
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .map(|info| info.reason.as_str());
        let message = status.message().to_owned();
        let field = || {
            details
                .bad_request()
                .and_then(|bad| bad.field_violations.first())
                .map(|violation| violation.field.clone())
        };
        match (status.code(), reason) {
            (Code::InvalidArgument, _) => Error::InvalidArgument {
                field: field(),
                message,
            },
            (Code::FailedPrecondition, Some("FOREIGN_LEASE")) => Error::ForeignLease { message },
            (Code::FailedPrecondition, Some("PERMITS_MISMATCH")) => Error::PermitsMismatch {
                field: field(),
                message,
            },
            (Code::FailedPrecondition, _) => Error::NotHeld { message },
            (Code::DeadlineExceeded, Some("WAIT_TIMEOUT")) => Error::WaitTimeout { message },
            (Code::DeadlineExceeded, _) => Error::DeadlineExceeded { message },
            (Code::Unavailable, Some("SHUTTING_DOWN")) => Error::ShuttingDown { message },
            (Code::Unavailable, _) => Error::Unavailable { message },
            (Code::PermissionDenied, _) => Error::PermissionDenied { message },
            (code, _) => Error::Other { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn invalid_argument_names_the_field_of_the_standard_bad_request() {
        let details = ErrorDetails::with_bad_request_violation("lease_duration", "must be whole seconds");
        let status = Status::with_error_details(Code::InvalidArgument, "must be whole seconds", details);
        let error = Error::from(status);
        assert_eq!(error.field(), Some("lease_duration"));
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(error.to_string(), "invalid argument: must be whole seconds");
    }

    #[test]
    fn the_old_field_trailer_is_not_read() {
        let mut metadata = MetadataMap::new();
        metadata.insert("field", "lease_duration".parse().unwrap());
        let status = Status::with_metadata(Code::InvalidArgument, "must be whole seconds", metadata);
        assert_eq!(Error::from(status).field(), None);
    }

    #[test]
    fn a_deadline_exceeded_without_the_wait_timeout_reason_is_not_a_wait_timeout() {
        let error = Error::from(Status::deadline_exceeded("Deadline Exceeded"));
        assert!(!matches!(error, Error::WaitTimeout { .. }), "{error:?}");
        assert_eq!(error.code(), Code::DeadlineExceeded);
    }

    #[test]
    fn the_sidecars_wait_timeout_reason_is_a_wait_timeout() {
        let details =
            ErrorDetails::with_error_info("WAIT_TIMEOUT", "sync.metaparticle.io", std::collections::HashMap::new());
        let status = Status::with_error_details(Code::DeadlineExceeded, "not free within 1s", details);
        let error = Error::from(status);
        assert!(matches!(error, Error::WaitTimeout { .. }), "{error:?}");
        assert_eq!(error.code(), Code::DeadlineExceeded);
    }

    #[test]
    fn failed_precondition_is_not_held() {
        let error = Error::from(Status::failed_precondition("token 3 is not current"));
        assert!(matches!(error, Error::NotHeld { .. }));
        assert_eq!(error.code(), Code::FailedPrecondition);
    }

    #[test]
    fn each_reason_of_the_sidecar_has_its_own_variant() {
        let with_reason = |code, reason: &str| {
            let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
            Error::from(Status::with_error_details(code, "because", details))
        };
        let foreign = with_reason(Code::FailedPrecondition, "FOREIGN_LEASE");
        assert!(matches!(foreign, Error::ForeignLease { .. }), "{foreign:?}");
        assert_eq!(foreign.code(), Code::FailedPrecondition);
        let stopping = with_reason(Code::Unavailable, "SHUTTING_DOWN");
        assert!(matches!(stopping, Error::ShuttingDown { .. }), "{stopping:?}");
        assert_eq!(stopping.code(), Code::Unavailable);
        let mut details =
            ErrorDetails::with_error_info("PERMITS_MISMATCH", ERROR_DOMAIN, std::collections::HashMap::new());
        details.set_bad_request(vec![tonic_types::FieldViolation::new("permits", "has 3 permits")]);
        let mismatch = Error::from(Status::with_error_details(Code::FailedPrecondition, "has 3", details));
        assert!(matches!(mismatch, Error::PermitsMismatch { .. }), "{mismatch:?}");
        assert_eq!(
            (mismatch.code(), mismatch.field()),
            (Code::FailedPrecondition, Some("permits"))
        );
        let unreachable = with_reason(Code::Unavailable, "UNAVAILABLE");
        assert!(matches!(unreachable, Error::Unavailable { .. }), "{unreachable:?}");
        // Another domain's reasons are not ours.
        let details = ErrorDetails::with_error_info("WAIT_TIMEOUT", "example.com", std::collections::HashMap::new());
        let other = Error::from(Status::with_error_details(Code::DeadlineExceeded, "x", details));
        assert!(matches!(other, Error::DeadlineExceeded { .. }), "{other:?}");
    }
}
