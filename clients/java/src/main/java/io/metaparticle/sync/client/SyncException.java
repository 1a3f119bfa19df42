package io.metaparticle.sync.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;

/**
 * A call the sidecar refused or could not serve, or that ran out of time. {@link #code()} says
 * what kind of failure it is, in this library's own {@link Code} (the gRPC status codes, by the
 * same names); {@link #reason()} and {@link #field()} come from the standard error details the
 * sidecar sends ({@code google.rpc.ErrorInfo} and {@code google.rpc.BadRequest}).
 *
 * <p>Unchecked, like the exceptions of grpc-java. The ones a caller usually handles:
 *
 * <ul>
 *   <li>{@link Code#DEADLINE_EXCEEDED}: the call's deadline passed, or, with reason {@link
 *       #WAIT_TIMEOUT}, a lock was not had within its wait timeout ({@link #isWaitTimeout()});
 *   <li>{@link Code#FAILED_PRECONDITION}: the lock, permit or term is not held (any more), reason
 *       {@link #NOT_HELD} or {@link #FOREIGN_LEASE}; or a semaphore has another number of permits
 *       than the caller asked for, reason {@link #PERMITS_MISMATCH} ({@link
 *       #isPermitsMismatch()}, field {@code permits});
 *   <li>{@link Code#INVALID_ARGUMENT}: a request field is wrong, named by {@link #field()};
 *   <li>{@link Code#UNAVAILABLE}: the sidecar cannot be reached, or is shutting down.
 * </ul>
 */
public final class SyncException extends RuntimeException {
  /** The domain of the sidecar's {@code google.rpc.ErrorInfo}. */
  public static final String ERROR_DOMAIN = "sync.metaparticle.io";

  /** Reason: a request field is wrong; {@link #field()} names it. */
  public static final String INVALID_ARGUMENT = "INVALID_ARGUMENT";
  /** Reason: the token or term is not the current one. */
  public static final String NOT_HELD = "NOT_HELD";
  /**
   * Reason: a semaphore's request asked for another number of permits than the semaphore has;
   * {@link #field()} is {@code permits}, and nothing is held.
   */
  public static final String PERMITS_MISMATCH = "PERMITS_MISMATCH";
  /** Reason: the Lease is held by something that is not a metaparticle-sync client. */
  public static final String FOREIGN_LEASE = "FOREIGN_LEASE";
  /** Reason: the lock was not had within its wait timeout (sidecar's or this client's clock). */
  public static final String WAIT_TIMEOUT = "WAIT_TIMEOUT";
  /** Reason: the sidecar's store cannot be reached. */
  public static final String UNAVAILABLE = "UNAVAILABLE";
  /** Reason: the sidecar may not read or write the Lease. */
  public static final String PERMISSION_DENIED = "PERMISSION_DENIED";
  /** Reason: the sidecar is shutting down. */
  public static final String SHUTTING_DOWN = "SHUTTING_DOWN";

  /** What kind of failure: the gRPC status codes, under the same names, as this library's own type. */
  public enum Code {
    CANCELLED,
    UNKNOWN,
    INVALID_ARGUMENT,
    DEADLINE_EXCEEDED,
    NOT_FOUND,
    ALREADY_EXISTS,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    FAILED_PRECONDITION,
    ABORTED,
    OUT_OF_RANGE,
    UNIMPLEMENTED,
    INTERNAL,
    UNAVAILABLE,
    DATA_LOSS,
    UNAUTHENTICATED;

    static Code of(Status.Code code) {
      return code == Status.Code.OK ? UNKNOWN : valueOf(code.name());
    }
  }

  private final Code code;
  private final String description;
  private final String reason;
  private final String field;

  SyncException(Code code, String message, String reason, String field, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
    this.description = message;
    this.reason = reason;
    this.field = field;
  }

  SyncException(Code code, String message) {
    this(code, message, null, null, null);
  }

  /** What kind of failure this is. */
  public Code code() {
    return code;
  }

  /**
   * Why, in more detail than {@link #code()}: the reason of the sidecar's {@code
   * google.rpc.ErrorInfo} (one of the constants of this class), {@link #WAIT_TIMEOUT} when this
   * client's own clock ended a lock's wait, else null.
   */
  public String reason() {
    return reason;
  }

  /**
   * The request field at fault (for example {@code name}, {@code lease_duration}, or {@code
   * permits} of a {@link #PERMITS_MISMATCH}), from the
   * sidecar's {@code google.rpc.BadRequest}; null when no field is.
   */
  public String field() {
    return field;
  }

  /** True when a lock was not had within its wait timeout. */
  public boolean isWaitTimeout() {
    return code == Code.DEADLINE_EXCEEDED && WAIT_TIMEOUT.equals(reason);
  }

  /** True when a semaphore has another number of permits than the request asked for. */
  public boolean isPermitsMismatch() {
    return code == Code.FAILED_PRECONDITION && PERMITS_MISMATCH.equals(reason);
  }

  /** The same failure, with {@code reason} as its reason. */
  SyncException withReason(String reason) {
    return new SyncException(code, description, reason, field, getCause());
  }

  /** Converts what a gRPC call failed with; the standard error details supply reason and field. */
  static SyncException from(Throwable error) {
    if (error instanceof SyncException sync) {
      return sync;
    }
    Status status = Status.fromThrowable(error);
    String description = status.getDescription() != null ? status.getDescription() : String.valueOf(error);
    String reason = null;
    String field = null;
    com.google.rpc.Status details = StatusProto.fromThrowable(error);
    if (details != null) {
      for (Any detail : details.getDetailsList()) {
        try {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            if (ERROR_DOMAIN.equals(info.getDomain())) {
              reason = info.getReason();
            }
          } else if (detail.is(BadRequest.class)) {
            BadRequest request = detail.unpack(BadRequest.class);
            if (request.getFieldViolationsCount() > 0) {
              field = request.getFieldViolations(0).getField();
            }
          }
        } catch (InvalidProtocolBufferException e) {
          // A detail that does not parse tells nothing; the code still does.
        }
      }
    }
    return new SyncException(Code.of(status.getCode()), description, reason, field, error);
  }
}
