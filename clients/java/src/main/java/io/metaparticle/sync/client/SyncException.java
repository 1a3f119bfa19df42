package io.metaparticle.sync.client;

import io.grpc.Metadata;
import io.grpc.Status;

/** A call the sidecar refused or could not serve, with its gRPC status code. */
public final class SyncException extends RuntimeException {
  private static final Metadata.Key<String> FIELD =
      Metadata.Key.of("field", Metadata.ASCII_STRING_MARSHALLER);

  private final Status.Code code;
  private final String field;

  SyncException(Status.Code code, String message, String field) {
    super(code + ": " + message);
    this.code = code;
    this.field = field;
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return code;
  }

  /** The request field at fault for INVALID_ARGUMENT, else null. */
  public String field() {
    return field;
  }

  static SyncException from(Throwable error) {
    if (error instanceof SyncException sync) {
      return sync;
    }
    Status status = Status.fromThrowable(error);
    Metadata trailers = Status.trailersFromThrowable(error);
    String description = status.getDescription() != null ? status.getDescription() : String.valueOf(error);
    return new SyncException(status.getCode(), description, trailers == null ? null : trailers.get(FIELD));
  }
}
