// The one error type of the crate, and the one place that turns a gRPC status
// into it.
use tonic::{Code, Status};

/// A call the sidecar refused or could not serve, or a request this client
/// would not send. Match on the variant; [`Error::code`] gives the gRPC status
/// code for every variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was malformed (`INVALID_ARGUMENT`); `field` names the
    /// request field at fault, as the sidecar reports it in its `field`
    /// trailer.
    #[error("invalid argument: {message}")]
    InvalidArgument { field: Option<String>, message: String },

    /// The fencing token or term is not the current one, so the caller does
    /// not hold what it named (`FAILED_PRECONDITION`). The sidecar also
    /// answers this for a Lease of that name that it does not manage.
    #[error("not held: {message}")]
    NotHeld { message: String },

    /// A try-lock found the lock held by someone else.
    #[error("lock {name} is held by {holder} (fencing token {fencing_token})")]
    NotFree {
        name: String,
        /// The current holder's name.
        holder: String,
        /// The current holder's fencing token.
        fencing_token: i64,
    },

    /// The lock was not free within the wait timeout (`DEADLINE_EXCEEDED`).
    #[error("wait timed out: {message}")]
    WaitTimeout { message: String },

    /// The sidecar, or the Kubernetes API server behind it, could not be
    /// reached, or the sidecar is shutting down (`UNAVAILABLE`). Worth
    /// retrying.
    #[error("unavailable: {message}")]
    Unavailable { message: String },

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
            Error::NotHeld { .. } | Error::NotFree { .. } => Code::FailedPrecondition,
            Error::WaitTimeout { .. } => Code::DeadlineExceeded,
            Error::Unavailable { .. } => Code::Unavailable,
            Error::PermissionDenied { .. } => Code::PermissionDenied,
            Error::Other { code, .. } => *code,
        }
    }

    /// The request field at fault, for [`Error::InvalidArgument`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidArgument { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => Error::InvalidArgument {
                field: status
                    .metadata()
                    .get("field")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
                message,
            },
            Code::FailedPrecondition => Error::NotHeld { message },
            Code::DeadlineExceeded => Error::WaitTimeout { message },
            Code::Unavailable => Error::Unavailable { message },
            Code::PermissionDenied => Error::PermissionDenied { message },
            code => Error::Other { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    #[test]
    fn invalid_argument_carries_the_field_trailer() {
        let mut metadata = MetadataMap::new();
        metadata.insert("field", "lease_duration".parse().unwrap());
        let status = Status::with_metadata(Code::InvalidArgument, "must be whole seconds", metadata);
        let error = Error::from(status);
        assert_eq!(error.field(), Some("lease_duration"));
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(error.to_string(), "invalid argument: must be whole seconds");
    }

    #[test]
    fn failed_precondition_is_not_held() {
        let error = Error::from(Status::failed_precondition("token 3 is not current"));
        assert!(matches!(error, Error::NotHeld { .. }));
        assert_eq!(error.code(), Code::FailedPrecondition);
    }
}
