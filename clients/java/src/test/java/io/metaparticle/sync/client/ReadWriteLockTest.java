package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class ReadWriteLockTest {
  private static final LockOptions LONG_LEASE = LockOptions.defaults().withLeaseDuration(Duration.ofSeconds(30));

  private static CompletableFuture<RWHold> acquireAsync(RWLockSide side, String holder) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return side.acquire(LockOptions.defaults().withHolder(holder)).orElseThrow();
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
        });
  }

  @Test
  void readersShareTheLockAndAWriterWaitsForThemAllThenHoldsAloneWithAGreaterToken() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      ReadWriteLock catalog = daemon.client().readWriteLock("catalog");
      assertEquals("catalog", catalog.name());
      assertEquals(LockMode.SHARED, catalog.readLock().mode());
      assertEquals(LockMode.EXCLUSIVE, catalog.writeLock().mode());
      RWLockInfo unused = catalog.get();
      assertFalse(unused.held());
      assertNull(unused.mode());
      assertEquals(0, unused.token());

      RWHold first = catalog.readLock().acquire(LockOptions.defaults().withHolder("first")).orElseThrow();
      RWHold second = catalog.readLock().acquire(LockOptions.defaults().withHolder("second")).orElseThrow();
      assertEquals(List.of(LockMode.SHARED, LockMode.SHARED), List.of(first.mode(), second.mode()));
      assertEquals(List.of(0L, 0L), List.of(first.token(), second.token()), "no writer yet: token 0");
      assertNotEquals(first.holdId(), second.holdId(), "two shared holds are told apart by hold id");
      RWLockInfo shared = catalog.get(true);
      assertEquals(LockMode.SHARED, shared.mode());
      assertEquals(2, shared.readerCount());
      assertEquals("", shared.holder());

      CompletableFuture<RWHold> writer = acquireAsync(catalog.writeLock(), "writer");
      assertThrows(TimeoutException.class, () -> writer.get(300, TimeUnit.MILLISECONDS), "a writer held with readers");
      first.close();
      assertFalse(first.lost().isDone(), "lost() completed on a normal close");
      assertThrows(TimeoutException.class, () -> writer.get(300, TimeUnit.MILLISECONDS), "a writer held with a reader");
      second.close();
      RWHold written = writer.get(10, TimeUnit.SECONDS);
      assertEquals(LockMode.EXCLUSIVE, written.mode());
      assertEquals("writer", written.holder());
      assertTrue(written.token() > 0, "an exclusive token is positive: " + written.token());
      RWLockInfo exclusive = catalog.get(true);
      assertEquals(LockMode.EXCLUSIVE, exclusive.mode());
      assertEquals("writer", exclusive.holder());
      assertEquals(written.token(), exclusive.token());
      assertEquals(0, exclusive.readerCount());

      // While it holds, a reader waits (a wait of zero gives up at once), then reports its token.
      assertEquals(Optional.empty(), catalog.readLock().acquire(Duration.ZERO));
      CompletableFuture<RWHold> reader = acquireAsync(catalog.readLock(), "late");
      assertThrows(TimeoutException.class, () -> reader.get(300, TimeUnit.MILLISECONDS), "a reader held with a writer");
      written.release();
      try (RWHold late = reader.get(10, TimeUnit.SECONDS)) {
        assertEquals(written.token(), late.token(), "a shared hold reports the last writer's token");
      }
      try (RWHold next = catalog.writeLock().acquire()) {
        assertTrue(next.token() > written.token(), "exclusive tokens must grow");
      }
    }
  }

  @Test
  void aWaitingWriterIsNotStarvedByLaterReaders() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      ReadWriteLock lock = daemon.client().readWriteLock("busy");
      RWHold reader = lock.readLock().acquire();
      CompletableFuture<RWHold> writer = acquireAsync(lock.writeLock(), "writer");
      assertThrows(TimeoutException.class, () -> writer.get(500, TimeUnit.MILLISECONDS));
      // The lock is held shared, but a reader asking after the writer waits behind it.
      assertEquals(Optional.empty(), lock.readLock().acquire(300, TimeUnit.MILLISECONDS));
      reader.close();
      try (RWHold written = writer.get(10, TimeUnit.SECONDS)) {
        assertEquals(LockMode.EXCLUSIVE, written.mode());
      }
    }
  }

  @Test
  void tryAcquireRefusedSaysHowTheLockIsHeldAndSharedHoldsGoByHoldId() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      ReadWriteLock lock = daemon.client().readWriteLock("leased-rw");
      LeasedRWHold writer = lock.writeLock().tryAcquire(LONG_LEASE.withHolder("w")).hold().orElseThrow();
      assertEquals(LockMode.EXCLUSIVE, writer.mode());
      assertEquals(Duration.ofSeconds(30), writer.leaseDuration());
      RWAttempt refused = lock.readLock().tryAcquire(LONG_LEASE);
      assertFalse(refused.acquired());
      RWLockInfo state = refused.state().orElseThrow();
      assertEquals(LockMode.EXCLUSIVE, state.mode());
      assertEquals("w", state.holder());
      assertEquals(writer.token(), state.token());
      assertFalse(state.holderIdentity().isEmpty());
      writer.release();

      LeasedRWHold r1 = lock.readLock().tryAcquire(LONG_LEASE.withHolder("r")).hold().orElseThrow();
      LeasedRWHold r2 = lock.readLock().tryAcquire(LONG_LEASE.withHolder("r")).hold().orElseThrow();
      assertEquals(List.of(writer.token(), writer.token()), List.of(r1.token(), r2.token()));
      RWAttempt refusedWriter = lock.writeLock().tryAcquire();
      assertEquals(Optional.empty(), refusedWriter.hold());
      assertEquals(LockMode.SHARED, refusedWriter.state().orElseThrow().mode());
      assertEquals(2, refusedWriter.state().orElseThrow().readerCount());

      // A longer lease: the sidecar's promise (a part of the lease) grows by more than time passed.
      Duration before = r1.validFor();
      Duration renewed = r1.renew(Duration.ofSeconds(40));
      assertTrue(renewed.compareTo(before.plus(Duration.ofSeconds(5))) > 0, "renewed for " + renewed + " from " + before);
      assertTrue(r1.validFor().compareTo(before) > 0, "the hold's own deadline moved too");
      assertTrue(lock.renew(r1.holdId()).compareTo(Duration.ofSeconds(5)) > 0, "by hold id alone");
      lock.release(r1.holdId());
      assertEquals(1, lock.get(true).readerCount());
      for (SyncException notHeld :
          List.of(
              assertThrows(SyncException.class, () -> lock.renew(r1.holdId())),
              assertThrows(SyncException.class, () -> lock.release(r1.holdId())),
              assertThrows(SyncException.class, r1::renew))) {
        assertEquals(SyncException.Code.FAILED_PRECONDITION, notHeld.code());
        assertEquals(SyncException.NOT_HELD, notHeld.reason());
        assertEquals("hold_id", notHeld.field());
      }
      r1.close(); // nothing left to give back: says nothing
      assertTrue(r2.renew().compareTo(Duration.ZERO) > 0, "the other shared hold still renews");
      r2.close();
      assertFalse(lock.get(true).held());
      try (LeasedRWHold next = lock.writeLock().tryAcquire().hold().orElseThrow()) {
        assertTrue(next.token() > writer.token());
      }
    }
  }

  @Test
  void aHoldReleasedByItsIdElsewhereIsToldItsStreamEnded() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      ReadWriteLock lock = daemon.client().readWriteLock("by-id");
      RWHold held = lock.writeLock().acquire(Duration.ofSeconds(10)).orElseThrow();
      lock.release(held.holdId());
      assertEquals(Loss.STREAM_ENDED, held.lost().get(10, TimeUnit.SECONDS).reason());
      assertFalse(held.isHeld());
      assertFalse(lock.get(true).held());
      held.close(); // already over: returns normally
    }
  }

  @Test
  void badInputNamesTheField() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      ReadWriteLock bad = daemon.client().readWriteLock("Not A Name");
      for (SyncException refused :
          List.of(
              assertThrows(SyncException.class, () -> bad.readLock().acquire()),
              assertThrows(SyncException.class, () -> bad.writeLock().acquire(Duration.ofSeconds(5))),
              assertThrows(SyncException.class, () -> bad.readLock().tryAcquire()),
              assertThrows(SyncException.class, bad::get))) {
        assertEquals(SyncException.Code.INVALID_ARGUMENT, refused.code(), refused.getMessage());
        assertEquals("name", refused.field());
      }
      RWLockSide writer = daemon.client().readWriteLock("fine").writeLock();
      SyncException badLease =
          assertThrows(
              SyncException.class,
              () -> writer.tryAcquire(LockOptions.defaults().withLeaseDuration(Duration.ofMillis(1500))));
      assertEquals("lease_duration", badLease.field());
      assertThrows(IllegalArgumentException.class, () -> writer.acquire(Duration.ofSeconds(-1)));
    }
  }

  @Test
  void aHoldIsLostOnTheClientsOwnDeadlineWhenTheSidecarFreezes() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      ReadWriteLock lock = daemon.client().readWriteLock("frozen");
      try (RWHold reader = lock.readLock().acquire();
          LeasedRWHold leased = lock.readLock().tryAcquire().hold().orElseThrow()) {
        Loss loss = daemon.freezeUntilLost(reader.lost(), Duration.ofSeconds(2)); // the lease
        assertEquals(Loss.HEARTBEAT_TIMEOUT, loss.reason());
        assertEquals(Duration.ZERO, reader.validFor());
        assertFalse(reader.isHeld());
        // Nothing renewed the leased one: its own deadline ran out too.
        assertEquals(Loss.HEARTBEAT_TIMEOUT, leased.lost().get(5, TimeUnit.SECONDS).reason());
      }
    }
  }
}
