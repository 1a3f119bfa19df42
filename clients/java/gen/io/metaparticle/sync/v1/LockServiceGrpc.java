package io.metaparticle.sync.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * LockService grants named locks that at most one holder has at any instant,
 * across every daemon that shares a Kubernetes namespace. Each acquisition
 * carries a fencing token that is strictly greater than every earlier token for
 * the same name, so a resource that remembers the highest token it has seen can
 * reject a holder that kept acting after it lost the lock.
 * A lock is held in one of two ways. Acquire holds it for as long as its stream
 * stays open and the daemon renews it. TryAcquire holds it for a lease that the
 * caller renews with Renew and ends with Release.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class LockServiceGrpc {

  private LockServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "metaparticle.sync.v1.LockService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.metaparticle.sync.v1.AcquireRequest,
      io.metaparticle.sync.v1.AcquireResponse> getAcquireMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Acquire",
      requestType = io.metaparticle.sync.v1.AcquireRequest.class,
      responseType = io.metaparticle.sync.v1.AcquireResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<io.metaparticle.sync.v1.AcquireRequest,
      io.metaparticle.sync.v1.AcquireResponse> getAcquireMethod() {
    io.grpc.MethodDescriptor<io.metaparticle.sync.v1.AcquireRequest, io.metaparticle.sync.v1.AcquireResponse> getAcquireMethod;
    if ((getAcquireMethod = LockServiceGrpc.getAcquireMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getAcquireMethod = LockServiceGrpc.getAcquireMethod) == null) {
          LockServiceGrpc.getAcquireMethod = getAcquireMethod =
              io.grpc.MethodDescriptor.<io.metaparticle.sync.v1.AcquireRequest, io.metaparticle.sync.v1.AcquireResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Acquire"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.AcquireRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.AcquireResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Acquire"))
              .build();
        }
      }
    }
    return getAcquireMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.metaparticle.sync.v1.TryAcquireRequest,
      io.metaparticle.sync.v1.TryAcquireResponse> getTryAcquireMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "TryAcquire",
      requestType = io.metaparticle.sync.v1.TryAcquireRequest.class,
      responseType = io.metaparticle.sync.v1.TryAcquireResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.metaparticle.sync.v1.TryAcquireRequest,
      io.metaparticle.sync.v1.TryAcquireResponse> getTryAcquireMethod() {
    io.grpc.MethodDescriptor<io.metaparticle.sync.v1.TryAcquireRequest, io.metaparticle.sync.v1.TryAcquireResponse> getTryAcquireMethod;
    if ((getTryAcquireMethod = LockServiceGrpc.getTryAcquireMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getTryAcquireMethod = LockServiceGrpc.getTryAcquireMethod) == null) {
          LockServiceGrpc.getTryAcquireMethod = getTryAcquireMethod =
              io.grpc.MethodDescriptor.<io.metaparticle.sync.v1.TryAcquireRequest, io.metaparticle.sync.v1.TryAcquireResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "TryAcquire"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.TryAcquireRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.TryAcquireResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("TryAcquire"))
              .build();
        }
      }
    }
    return getTryAcquireMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.metaparticle.sync.v1.RenewRequest,
      io.metaparticle.sync.v1.RenewResponse> getRenewMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Renew",
      requestType = io.metaparticle.sync.v1.RenewRequest.class,
      responseType = io.metaparticle.sync.v1.RenewResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.metaparticle.sync.v1.RenewRequest,
      io.metaparticle.sync.v1.RenewResponse> getRenewMethod() {
    io.grpc.MethodDescriptor<io.metaparticle.sync.v1.RenewRequest, io.metaparticle.sync.v1.RenewResponse> getRenewMethod;
    if ((getRenewMethod = LockServiceGrpc.getRenewMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getRenewMethod = LockServiceGrpc.getRenewMethod) == null) {
          LockServiceGrpc.getRenewMethod = getRenewMethod =
              io.grpc.MethodDescriptor.<io.metaparticle.sync.v1.RenewRequest, io.metaparticle.sync.v1.RenewResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Renew"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.RenewRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.RenewResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Renew"))
              .build();
        }
      }
    }
    return getRenewMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.metaparticle.sync.v1.ReleaseRequest,
      io.metaparticle.sync.v1.ReleaseResponse> getReleaseMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Release",
      requestType = io.metaparticle.sync.v1.ReleaseRequest.class,
      responseType = io.metaparticle.sync.v1.ReleaseResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.metaparticle.sync.v1.ReleaseRequest,
      io.metaparticle.sync.v1.ReleaseResponse> getReleaseMethod() {
    io.grpc.MethodDescriptor<io.metaparticle.sync.v1.ReleaseRequest, io.metaparticle.sync.v1.ReleaseResponse> getReleaseMethod;
    if ((getReleaseMethod = LockServiceGrpc.getReleaseMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getReleaseMethod = LockServiceGrpc.getReleaseMethod) == null) {
          LockServiceGrpc.getReleaseMethod = getReleaseMethod =
              io.grpc.MethodDescriptor.<io.metaparticle.sync.v1.ReleaseRequest, io.metaparticle.sync.v1.ReleaseResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Release"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.ReleaseRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.ReleaseResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Release"))
              .build();
        }
      }
    }
    return getReleaseMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.metaparticle.sync.v1.GetLockRequest,
      io.metaparticle.sync.v1.GetLockResponse> getGetLockMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetLock",
      requestType = io.metaparticle.sync.v1.GetLockRequest.class,
      responseType = io.metaparticle.sync.v1.GetLockResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.metaparticle.sync.v1.GetLockRequest,
      io.metaparticle.sync.v1.GetLockResponse> getGetLockMethod() {
    io.grpc.MethodDescriptor<io.metaparticle.sync.v1.GetLockRequest, io.metaparticle.sync.v1.GetLockResponse> getGetLockMethod;
    if ((getGetLockMethod = LockServiceGrpc.getGetLockMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getGetLockMethod = LockServiceGrpc.getGetLockMethod) == null) {
          LockServiceGrpc.getGetLockMethod = getGetLockMethod =
              io.grpc.MethodDescriptor.<io.metaparticle.sync.v1.GetLockRequest, io.metaparticle.sync.v1.GetLockResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetLock"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.GetLockRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.metaparticle.sync.v1.GetLockResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("GetLock"))
              .build();
        }
      }
    }
    return getGetLockMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static LockServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceStub>() {
        @java.lang.Override
        public LockServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceStub(channel, callOptions);
        }
      };
    return LockServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static LockServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingV2Stub>() {
        @java.lang.Override
        public LockServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return LockServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static LockServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingStub>() {
        @java.lang.Override
        public LockServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceBlockingStub(channel, callOptions);
        }
      };
    return LockServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static LockServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceFutureStub>() {
        @java.lang.Override
        public LockServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceFutureStub(channel, callOptions);
        }
      };
    return LockServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Acquire waits until the lock is free, takes it and keeps it while the
     * stream stays open. The first message is `acquired`; after every renewal the
     * daemon sends `renewed` with how much longer the holder may safely act. If
     * the daemon cannot renew in time it sends `lost` before the lease could
     * expire for anyone else, then ends the stream. Closing or cancelling the
     * stream releases the lock at once. Waiters on one daemon are served in the
     * order they called. When `wait_timeout` passes first, the stream ends with
     * DEADLINE_EXCEEDED.
     * </pre>
     */
    default void acquire(io.metaparticle.sync.v1.AcquireRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.AcquireResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAcquireMethod(), responseObserver);
    }

    /**
     * <pre>
     * TryAcquire makes one attempt to take the lock without waiting. On success
     * the lock is held for `lease_duration` unless renewed with Renew, and must be
     * given back with Release; the lease is tied to this daemon process.
     * </pre>
     */
    default void tryAcquire(io.metaparticle.sync.v1.TryAcquireRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.TryAcquireResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getTryAcquireMethod(), responseObserver);
    }

    /**
     * <pre>
     * Renew extends a lock taken with TryAcquire by another lease duration,
     * counted from now. A token that is not the current one for the name, or that
     * another daemon process holds, gets FAILED_PRECONDITION and changes nothing.
     * </pre>
     */
    default void renew(io.metaparticle.sync.v1.RenewRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.RenewResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRenewMethod(), responseObserver);
    }

    /**
     * <pre>
     * Release gives back a lock taken with TryAcquire so the next waiter gets it
     * at once. A token that is not the current one gets FAILED_PRECONDITION and
     * changes nothing; this includes releasing the same token twice.
     * </pre>
     */
    default void release(io.metaparticle.sync.v1.ReleaseRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.ReleaseResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReleaseMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetLock reports who holds a lock. An unheld lock is not an error: `held` is
     * false and `fencing_token` is the last token granted, if any.
     * </pre>
     */
    default void getLock(io.metaparticle.sync.v1.GetLockRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.GetLockResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetLockMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service LockService.
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public static abstract class LockServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return LockServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service LockService.
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public static final class LockServiceStub
      extends io.grpc.stub.AbstractAsyncStub<LockServiceStub> {
    private LockServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Acquire waits until the lock is free, takes it and keeps it while the
     * stream stays open. The first message is `acquired`; after every renewal the
     * daemon sends `renewed` with how much longer the holder may safely act. If
     * the daemon cannot renew in time it sends `lost` before the lease could
     * expire for anyone else, then ends the stream. Closing or cancelling the
     * stream releases the lock at once. Waiters on one daemon are served in the
     * order they called. When `wait_timeout` passes first, the stream ends with
     * DEADLINE_EXCEEDED.
     * </pre>
     */
    public void acquire(io.metaparticle.sync.v1.AcquireRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.AcquireResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getAcquireMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * TryAcquire makes one attempt to take the lock without waiting. On success
     * the lock is held for `lease_duration` unless renewed with Renew, and must be
     * given back with Release; the lease is tied to this daemon process.
     * </pre>
     */
    public void tryAcquire(io.metaparticle.sync.v1.TryAcquireRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.TryAcquireResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getTryAcquireMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Renew extends a lock taken with TryAcquire by another lease duration,
     * counted from now. A token that is not the current one for the name, or that
     * another daemon process holds, gets FAILED_PRECONDITION and changes nothing.
     * </pre>
     */
    public void renew(io.metaparticle.sync.v1.RenewRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.RenewResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRenewMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Release gives back a lock taken with TryAcquire so the next waiter gets it
     * at once. A token that is not the current one gets FAILED_PRECONDITION and
     * changes nothing; this includes releasing the same token twice.
     * </pre>
     */
    public void release(io.metaparticle.sync.v1.ReleaseRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.ReleaseResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReleaseMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetLock reports who holds a lock. An unheld lock is not an error: `held` is
     * false and `fencing_token` is the last token granted, if any.
     * </pre>
     */
    public void getLock(io.metaparticle.sync.v1.GetLockRequest request,
        io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.GetLockResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetLockMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service LockService.
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public static final class LockServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<LockServiceBlockingV2Stub> {
    private LockServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Acquire waits until the lock is free, takes it and keeps it while the
     * stream stays open. The first message is `acquired`; after every renewal the
     * daemon sends `renewed` with how much longer the holder may safely act. If
     * the daemon cannot renew in time it sends `lost` before the lease could
     * expire for anyone else, then ends the stream. Closing or cancelling the
     * stream releases the lock at once. Waiters on one daemon are served in the
     * order they called. When `wait_timeout` passes first, the stream ends with
     * DEADLINE_EXCEEDED.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, io.metaparticle.sync.v1.AcquireResponse>
        acquire(io.metaparticle.sync.v1.AcquireRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getAcquireMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * TryAcquire makes one attempt to take the lock without waiting. On success
     * the lock is held for `lease_duration` unless renewed with Renew, and must be
     * given back with Release; the lease is tied to this daemon process.
     * </pre>
     */
    public io.metaparticle.sync.v1.TryAcquireResponse tryAcquire(io.metaparticle.sync.v1.TryAcquireRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getTryAcquireMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Renew extends a lock taken with TryAcquire by another lease duration,
     * counted from now. A token that is not the current one for the name, or that
     * another daemon process holds, gets FAILED_PRECONDITION and changes nothing.
     * </pre>
     */
    public io.metaparticle.sync.v1.RenewResponse renew(io.metaparticle.sync.v1.RenewRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRenewMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Release gives back a lock taken with TryAcquire so the next waiter gets it
     * at once. A token that is not the current one gets FAILED_PRECONDITION and
     * changes nothing; this includes releasing the same token twice.
     * </pre>
     */
    public io.metaparticle.sync.v1.ReleaseResponse release(io.metaparticle.sync.v1.ReleaseRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getReleaseMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetLock reports who holds a lock. An unheld lock is not an error: `held` is
     * false and `fencing_token` is the last token granted, if any.
     * </pre>
     */
    public io.metaparticle.sync.v1.GetLockResponse getLock(io.metaparticle.sync.v1.GetLockRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetLockMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service LockService.
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public static final class LockServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<LockServiceBlockingStub> {
    private LockServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Acquire waits until the lock is free, takes it and keeps it while the
     * stream stays open. The first message is `acquired`; after every renewal the
     * daemon sends `renewed` with how much longer the holder may safely act. If
     * the daemon cannot renew in time it sends `lost` before the lease could
     * expire for anyone else, then ends the stream. Closing or cancelling the
     * stream releases the lock at once. Waiters on one daemon are served in the
     * order they called. When `wait_timeout` passes first, the stream ends with
     * DEADLINE_EXCEEDED.
     * </pre>
     */
    public java.util.Iterator<io.metaparticle.sync.v1.AcquireResponse> acquire(
        io.metaparticle.sync.v1.AcquireRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getAcquireMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * TryAcquire makes one attempt to take the lock without waiting. On success
     * the lock is held for `lease_duration` unless renewed with Renew, and must be
     * given back with Release; the lease is tied to this daemon process.
     * </pre>
     */
    public io.metaparticle.sync.v1.TryAcquireResponse tryAcquire(io.metaparticle.sync.v1.TryAcquireRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getTryAcquireMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Renew extends a lock taken with TryAcquire by another lease duration,
     * counted from now. A token that is not the current one for the name, or that
     * another daemon process holds, gets FAILED_PRECONDITION and changes nothing.
     * </pre>
     */
    public io.metaparticle.sync.v1.RenewResponse renew(io.metaparticle.sync.v1.RenewRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRenewMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Release gives back a lock taken with TryAcquire so the next waiter gets it
     * at once. A token that is not the current one gets FAILED_PRECONDITION and
     * changes nothing; this includes releasing the same token twice.
     * </pre>
     */
    public io.metaparticle.sync.v1.ReleaseResponse release(io.metaparticle.sync.v1.ReleaseRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReleaseMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetLock reports who holds a lock. An unheld lock is not an error: `held` is
     * false and `fencing_token` is the last token granted, if any.
     * </pre>
     */
    public io.metaparticle.sync.v1.GetLockResponse getLock(io.metaparticle.sync.v1.GetLockRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetLockMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service LockService.
   * <pre>
   * LockService grants named locks that at most one holder has at any instant,
   * across every daemon that shares a Kubernetes namespace. Each acquisition
   * carries a fencing token that is strictly greater than every earlier token for
   * the same name, so a resource that remembers the highest token it has seen can
   * reject a holder that kept acting after it lost the lock.
   * A lock is held in one of two ways. Acquire holds it for as long as its stream
   * stays open and the daemon renews it. TryAcquire holds it for a lease that the
   * caller renews with Renew and ends with Release.
   * </pre>
   */
  public static final class LockServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<LockServiceFutureStub> {
    private LockServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * TryAcquire makes one attempt to take the lock without waiting. On success
     * the lock is held for `lease_duration` unless renewed with Renew, and must be
     * given back with Release; the lease is tied to this daemon process.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.metaparticle.sync.v1.TryAcquireResponse> tryAcquire(
        io.metaparticle.sync.v1.TryAcquireRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getTryAcquireMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Renew extends a lock taken with TryAcquire by another lease duration,
     * counted from now. A token that is not the current one for the name, or that
     * another daemon process holds, gets FAILED_PRECONDITION and changes nothing.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.metaparticle.sync.v1.RenewResponse> renew(
        io.metaparticle.sync.v1.RenewRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRenewMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Release gives back a lock taken with TryAcquire so the next waiter gets it
     * at once. A token that is not the current one gets FAILED_PRECONDITION and
     * changes nothing; this includes releasing the same token twice.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.metaparticle.sync.v1.ReleaseResponse> release(
        io.metaparticle.sync.v1.ReleaseRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReleaseMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetLock reports who holds a lock. An unheld lock is not an error: `held` is
     * false and `fencing_token` is the last token granted, if any.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.metaparticle.sync.v1.GetLockResponse> getLock(
        io.metaparticle.sync.v1.GetLockRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetLockMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_ACQUIRE = 0;
  private static final int METHODID_TRY_ACQUIRE = 1;
  private static final int METHODID_RENEW = 2;
  private static final int METHODID_RELEASE = 3;
  private static final int METHODID_GET_LOCK = 4;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_ACQUIRE:
          serviceImpl.acquire((io.metaparticle.sync.v1.AcquireRequest) request,
              (io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.AcquireResponse>) responseObserver);
          break;
        case METHODID_TRY_ACQUIRE:
          serviceImpl.tryAcquire((io.metaparticle.sync.v1.TryAcquireRequest) request,
              (io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.TryAcquireResponse>) responseObserver);
          break;
        case METHODID_RENEW:
          serviceImpl.renew((io.metaparticle.sync.v1.RenewRequest) request,
              (io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.RenewResponse>) responseObserver);
          break;
        case METHODID_RELEASE:
          serviceImpl.release((io.metaparticle.sync.v1.ReleaseRequest) request,
              (io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.ReleaseResponse>) responseObserver);
          break;
        case METHODID_GET_LOCK:
          serviceImpl.getLock((io.metaparticle.sync.v1.GetLockRequest) request,
              (io.grpc.stub.StreamObserver<io.metaparticle.sync.v1.GetLockResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getAcquireMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              io.metaparticle.sync.v1.AcquireRequest,
              io.metaparticle.sync.v1.AcquireResponse>(
                service, METHODID_ACQUIRE)))
        .addMethod(
          getTryAcquireMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.metaparticle.sync.v1.TryAcquireRequest,
              io.metaparticle.sync.v1.TryAcquireResponse>(
                service, METHODID_TRY_ACQUIRE)))
        .addMethod(
          getRenewMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.metaparticle.sync.v1.RenewRequest,
              io.metaparticle.sync.v1.RenewResponse>(
                service, METHODID_RENEW)))
        .addMethod(
          getReleaseMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.metaparticle.sync.v1.ReleaseRequest,
              io.metaparticle.sync.v1.ReleaseResponse>(
                service, METHODID_RELEASE)))
        .addMethod(
          getGetLockMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.metaparticle.sync.v1.GetLockRequest,
              io.metaparticle.sync.v1.GetLockResponse>(
                service, METHODID_GET_LOCK)))
        .build();
  }

  private static abstract class LockServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    LockServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.metaparticle.sync.v1.LockServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("LockService");
    }
  }

  private static final class LockServiceFileDescriptorSupplier
      extends LockServiceBaseDescriptorSupplier {
    LockServiceFileDescriptorSupplier() {}
  }

  private static final class LockServiceMethodDescriptorSupplier
      extends LockServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    LockServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (LockServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new LockServiceFileDescriptorSupplier())
              .addMethod(getAcquireMethod())
              .addMethod(getTryAcquireMethod())
              .addMethod(getRenewMethod())
              .addMethod(getReleaseMethod())
              .addMethod(getGetLockMethod())
              .build();
        }
      }
    }
    return result;
  }
}
