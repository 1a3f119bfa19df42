package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class SemaphoreTest {
  private static final LockOptions LONG_LEASE = LockOptions.defaults().withLeaseDuration(Duration.ofSeconds(30));

  private static Set<String> holderNames(List<PermitHolder> holders) {
    return holders.stream().map(PermitHolder::holder).collect(Collectors.toSet());
  }

  private static CompletableFuture<Permit> acquireAsync(Semaphore semaphore, String holder) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return semaphore.acquire(LockOptions.defaults().withHolder(holder)).orElseThrow();
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
        });
  }

  @Test
  void twoPermitsAreHeldByTwoHoldersAndAThirdWaitsForARelease() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      Semaphore semaphore = client.semaphore("export", 2);
      Permit first = semaphore.acquire(LockOptions.defaults().withHolder("first")).orElseThrow();
      Permit second = semaphore.acquire(LockOptions.defaults().withHolder("second")).orElseThrow();
      assertEquals(List.of("first", "second"), List.of(first.holder(), second.holder()));
      assertEquals(List.of(2, 2), List.of(first.permits(), second.permits()));
      assertEquals("export", first.name());
      assertTrue(
          first.token() > 0 && second.token() > first.token(),
          "tokens must grow: " + first.token() + ", " + second.token());
      assertNotEquals(first.holdId(), second.holdId());
      assertTrue(first.validFor().compareTo(Duration.ZERO) > 0 && second.isHeld());

      SemaphoreInfo info = client.getSemaphore("export", true);
      assertEquals(2, info.permits());
      assertEquals(Set.of("first", "second"), holderNames(info.holders()));
      assertEquals(
          Set.of(first.token(), second.token()),
          info.holders().stream().map(PermitHolder::token).collect(Collectors.toSet()));
      assertEquals(second.token(), info.token());

      // Both permits are taken: a wait of zero gives up at once (only a wait timeout is empty).
      assertEquals(Optional.empty(), semaphore.acquire(Duration.ZERO));

      CompletableFuture<Permit> third = acquireAsync(semaphore, "third");
      assertThrows(TimeoutException.class, () -> third.get(300, TimeUnit.MILLISECONDS), "a third holder got a permit");

      first.close();
      // A normal close is not a loss: lost() is for stopping work that is still running.
      assertFalse(first.lost().isDone(), "lost() completed on a normal close");
      assertFalse(first.isHeld());
      try (Permit granted = third.get(10, TimeUnit.SECONDS)) {
        assertEquals("third", granted.holder());
        assertTrue(granted.token() > second.token(), "fencing tokens must grow");
        assertTrue(second.isHeld() && !second.isLost());
        assertEquals(Set.of("second", "third"), holderNames(client.getSemaphore("export", true).holders()));
      }
      second.close();
      assertEquals(List.of(), client.getSemaphore("export", true).holders());
    }
  }

  @Test
  void tryAcquireWhenFullReturnsTheHolders() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      Semaphore semaphore = daemon.client().semaphore("report", 2);
      PermitAttempt a = semaphore.tryAcquire(LONG_LEASE.withHolder("a"));
      PermitAttempt b = semaphore.tryAcquire(LONG_LEASE.withHolder("b"));
      assertTrue(a.acquired() && b.acquired());
      assertEquals(List.of(), a.holders());
      LeasedPermit leasedA = a.permit().orElseThrow();
      LeasedPermit leasedB = b.permit().orElseThrow();
      assertEquals(Duration.ofSeconds(30), leasedA.leaseDuration());
      assertEquals(2, leasedA.permits());
      assertTrue(leasedB.token() > leasedA.token());

      PermitAttempt full = semaphore.tryAcquire(LONG_LEASE.withHolder("c"));
      assertFalse(full.acquired());
      assertEquals(Optional.empty(), full.permit());
      assertEquals(Set.of("a", "b"), holderNames(full.holders()));
      for (PermitHolder holder : full.holders()) {
        long expected = holder.holder().equals("a") ? leasedA.token() : leasedB.token();
        assertEquals(expected, holder.token(), "a hold of this sidecar reports its token");
        assertEquals(Duration.ofSeconds(30), holder.leaseDuration());
        assertFalse(holder.holderIdentity().isEmpty());
      }

      leasedA.release();
      PermitAttempt next = semaphore.tryAcquire(LONG_LEASE.withHolder("c"));
      try (LeasedPermit c = next.permit().orElseThrow()) {
        assertTrue(c.token() > leasedB.token());
      }
      leasedB.close();
    }
  }

  @Test
  void renewAndReleaseGoByHoldId() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      Semaphore semaphore = client.semaphore("batch", 2);
      LeasedPermit leased =
          semaphore.tryAcquire(LockOptions.defaults().withLeaseDuration(Duration.ofSeconds(5))).permit().orElseThrow();
      Duration validFor = leased.renew(Duration.ofSeconds(30));
      assertTrue(validFor.compareTo(Duration.ofSeconds(5)) > 0, "renewed for " + validFor);
      assertTrue(leased.validFor().compareTo(Duration.ofSeconds(5)) > 0);
      // By hold id, as another part of the program that knows only the id would.
      assertTrue(semaphore.renew(leased.holdId()).compareTo(Duration.ofSeconds(5)) > 0);

      semaphore.release(leased.holdId());
      assertEquals(List.of(), client.getSemaphore("batch", true).holders());
      for (SyncException refused :
          List.of(
              assertThrows(SyncException.class, () -> semaphore.renew(leased.holdId())),
              assertThrows(SyncException.class, () -> semaphore.release(leased.holdId())),
              assertThrows(SyncException.class, leased::renew))) {
        assertEquals(SyncException.Code.FAILED_PRECONDITION, refused.code());
        assertEquals(SyncException.NOT_HELD, refused.reason());
        assertEquals("hold_id", refused.field());
      }
      // close() has nothing left to give back and says nothing.
      leased.close();

      // A stream's hold released by its id: the sidecar ends the stream, and the holder is told to stop.
      Permit held = semaphore.acquire(Duration.ofSeconds(10)).orElseThrow();
      semaphore.release(held.holdId());
      assertEquals(Loss.STREAM_ENDED, held.lost().get(10, TimeUnit.SECONDS).reason());
      assertFalse(held.isHeld());
      assertEquals(List.of(), client.getSemaphore("batch", true).holders());
      held.close(); // already over: returns normally
    }
  }

  @Test
  void permitsMismatchIsTypedAndHoldsNothing() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      SemaphoreInfo unused = client.getSemaphore("never-used");
      assertEquals(0, unused.permits());
      assertEquals(List.of(), unused.holders());
      assertEquals(0, unused.token());

      try (LeasedPermit held = client.semaphore("export", 3).tryAcquire().permit().orElseThrow()) {
        Semaphore five = client.semaphore("export", 5);
        for (SyncException refused :
            List.of(
                assertThrows(SyncException.class, () -> five.acquire(Duration.ofSeconds(5))),
                assertThrows(SyncException.class, five::acquire),
                assertThrows(SyncException.class, five::tryAcquire))) {
          assertEquals(SyncException.Code.FAILED_PRECONDITION, refused.code(), refused.getMessage());
          assertEquals(SyncException.PERMITS_MISMATCH, refused.reason());
          assertTrue(refused.isPermitsMismatch());
          assertFalse(refused.isWaitTimeout());
          assertEquals("permits", refused.field());
          assertTrue(refused.getMessage().contains("has 3 permits"), refused.getMessage());
        }
        SemaphoreInfo info = client.getSemaphore("export", true);
        assertEquals(3, info.permits());
        assertEquals(List.of(held.token()), info.holders().stream().map(PermitHolder::token).toList());
      }

      for (int permits : new int[] {0, 33}) {
        SyncException refused =
            assertThrows(SyncException.class, () -> client.semaphore("bad-n", permits).tryAcquire());
        assertEquals(SyncException.Code.INVALID_ARGUMENT, refused.code());
        assertEquals("permits", refused.field());
        assertFalse(refused.isPermitsMismatch());
      }
    }
  }

  @Test
  void aPermitIsLostOnTheClientsOwnDeadlineWhenTheSidecarFreezes() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s");
        Permit permit = daemon.client().semaphore("frozen", 2).acquire()) {
      Loss loss = daemon.freezeUntilLost(permit.lost(), Duration.ofSeconds(2)); // the lease
      assertEquals(Loss.HEARTBEAT_TIMEOUT, loss.reason());
      assertEquals(Duration.ZERO, permit.validFor());
      assertFalse(permit.isHeld());
    }
  }
}
