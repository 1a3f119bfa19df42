package io.metaparticle.sync.client;

/** How a {@link ReadWriteLock} is held: by readers together, or by one writer alone. */
public enum LockMode {
  /** A read hold: other shared holds at once, no exclusive one. Its token is not unique. */
  SHARED,
  /** A write hold: no other hold of the lock at once. Its token is greater than every earlier one. */
  EXCLUSIVE;

  io.metaparticle.sync.v1.LockMode toProto() {
    return this == SHARED ? io.metaparticle.sync.v1.LockMode.LOCK_MODE_SHARED : io.metaparticle.sync.v1.LockMode.LOCK_MODE_EXCLUSIVE;
  }

  /** The mode the sidecar reports; null for none (a lock not held) or one this client does not know. */
  static LockMode fromProto(io.metaparticle.sync.v1.LockMode mode) {
    return switch (mode) {
      case LOCK_MODE_SHARED -> SHARED;
      case LOCK_MODE_EXCLUSIVE -> EXCLUSIVE;
      default -> null;
    };
  }

  /** What a hold in this mode is called in messages, before the lock's name. */
  String kind() {
    return this == SHARED ? "a shared hold of read-write lock" : "the exclusive hold of read-write lock";
  }
}
