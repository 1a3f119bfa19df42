package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A frozen sidecar (SIGSTOP) answers nothing: every call must still return within its deadline,
 * with the defaults a caller gets without asking.
 */
@Timeout(90)
class FrozenSidecarTest {
  /** Long enough that no promise runs out while the tests run: only a deadline can end a call. */
  private static final Duration LONG_LEASE = Duration.ofSeconds(60);
  /** The documented default deadline of a call (SyncClient.DEFAULT_CALL_TIMEOUT). */
  private static final Duration CALL_TIMEOUT = Duration.ofSeconds(10);
  /** The documented grace after a lock's wait timeout (SyncClient.WAIT_TIMEOUT_GRACE). */
  private static final Duration WAIT_GRACE = Duration.ofSeconds(1);
  /** Room for a slow machine on top of a deadline. */
  private static final Duration SLACK = Duration.ofSeconds(3);

  /** Runs each call on its own thread, and fails unless every one finished within {@code bound}. */
  private static Map<String, Object> runAll(Map<String, Callable<Object>> calls, Duration bound)
      throws InterruptedException {
    ExecutorService threads =
        Executors.newCachedThreadPool(
            runnable -> {
              Thread thread = new Thread(runnable, "frozen-sidecar-call");
              thread.setDaemon(true); // a call that never returns must not keep the JVM alive
              return thread;
            });
    try {
      Map<String, Future<Object>> running = new LinkedHashMap<>();
      calls.forEach((name, call) -> running.put(name, threads.submit(call)));
      long deadline = System.nanoTime() + bound.toNanos();
      Map<String, Object> outcomes = new LinkedHashMap<>();
      StringBuilder stuck = new StringBuilder();
      for (Map.Entry<String, Future<Object>> entry : running.entrySet()) {
        try {
          outcomes.put(entry.getKey(), entry.getValue().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
        } catch (ExecutionException e) {
          outcomes.put(entry.getKey(), e.getCause());
        } catch (TimeoutException e) {
          stuck.append(' ').append(entry.getKey());
        }
      }
      if (stuck.length() > 0) {
        fail("still blocked " + bound + " after the sidecar froze:" + stuck);
      }
      return outcomes;
    } finally {
      threads.shutdownNow();
    }
  }

  private static void assertDeadlineExceeded(String call, Object outcome) {
    if (!(outcome instanceof SyncException error)) {
      fail(call + " returned " + outcome + " from a frozen sidecar instead of failing with DEADLINE_EXCEEDED");
      return;
    }
    assertEquals("DEADLINE_EXCEEDED", error.code().name(), call + ": " + error.getMessage());
  }

  @Test
  void everyBlockingCallReturnsWithinTheDefaultDeadlineOnAFrozenSidecar() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      LockOptions longLease = LockOptions.defaults().withLeaseDuration(LONG_LEASE);
      LeasedLock leased = client.tryLock("leased", longLease).orElseThrow();
      Lock held = client.lock("held", longLease);
      BlockingQueue<Leadership> elected = new LinkedBlockingQueue<>();
      ElectionListener listener =
          new ElectionListener() {
            @Override
            public void elected(Leadership leadership) {
              elected.add(leadership);
            }
          };
      CampaignOptions campaignOptions = CampaignOptions.defaults().withLeaseDuration(LONG_LEASE);
      Campaign proclaiming = client.campaign("proclaiming", campaignOptions, listener);
      Campaign resigning = client.campaign("resigning", campaignOptions, listener);
      assertTrue(elected.poll(10, TimeUnit.SECONDS) != null && elected.poll(10, TimeUnit.SECONDS) != null);

      daemon.freeze();
      Map<String, Callable<Object>> calls = new LinkedHashMap<>();
      calls.put("tryLock", () -> client.tryLock("other"));
      calls.put("renew", leased::renew);
      calls.put("release of a tryLock lock", () -> {
        leased.close();
        return "released";
      });
      calls.put("getLock", () -> client.getLock("held"));
      calls.put("getLeader", () -> client.getLeader("proclaiming"));
      calls.put("proclaim", () -> {
        proclaiming.proclaim("v2");
        return "proclaimed";
      });
      calls.put("release of a held lock", () -> {
        held.close();
        return "released";
      });
      calls.put("resign", () -> {
        resigning.resign();
        return "resigned";
      });
      Map<String, Object> outcomes = runAll(calls, CALL_TIMEOUT.plus(SLACK));
      // resign() need not fail: the campaign is over either way, and the sidecar hands the term on
      // when it sees the stream end.
      outcomes.remove("resign");
      outcomes.forEach(FrozenSidecarTest::assertDeadlineExceeded);
    }
  }

  @Test
  void aLockWaitEndsOnTheClientsOwnClockWhenTheSidecarFreezes() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      client.getLock("warm-up"); // connected before the freeze
      daemon.freeze();
      Duration wait = Duration.ofSeconds(1);
      long start = System.nanoTime();
      Object outcome =
          runAll(
                  Map.of("lock", () -> client.lock("waited", LockOptions.defaults().withWaitTimeout(wait))),
                  wait.plus(WAIT_GRACE).plus(SLACK))
              .get("lock");
      Duration took = Duration.ofNanos(System.nanoTime() - start);
      assertDeadlineExceeded("lock", outcome);
      assertTrue(took.compareTo(wait) >= 0, "gave up after " + took + ", before its wait timeout " + wait);
    }
  }

  @Test
  void everyCallTakesItsOwnDeadline() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      LockOptions longLease = LockOptions.defaults().withLeaseDuration(LONG_LEASE);
      LeasedLock leased = client.tryLock("leased", longLease).orElseThrow();
      Lock held = client.lock("held", longLease);
      Campaign campaign =
          client.campaign("election", CampaignOptions.defaults().withLeaseDuration(LONG_LEASE), new ElectionListener() {});
      assertTrue(campaign.await(Duration.ofSeconds(10)), "never elected");

      daemon.freeze();
      Duration timeout = Duration.ofMillis(500);
      Map<String, Callable<Object>> calls = new LinkedHashMap<>();
      calls.put("tryLock", () -> client.tryLock("other", LockOptions.defaults(), timeout));
      calls.put("renew", () -> leased.renew(null, timeout));
      calls.put("getLock", () -> client.getLock("held", true, timeout));
      calls.put("getLeader", () -> client.getLeader("election", true, timeout));
      calls.put("proclaim", () -> {
        campaign.proclaim("v2", timeout);
        return "proclaimed";
      });
      calls.put("lock", () -> client.lock("other", timeout));
      calls.put("lock (time, unit)", () -> client.lock("other", 500, TimeUnit.MILLISECONDS));
      long start = System.nanoTime();
      Map<String, Object> outcomes = runAll(calls, timeout.plus(WAIT_GRACE).plus(SLACK));
      outcomes.forEach(FrozenSidecarTest::assertDeadlineExceeded);
      assertTrue(((SyncException) outcomes.get("lock")).isWaitTimeout(), "a lock's wait timeout says so");
      assertFalse(((SyncException) outcomes.get("getLock")).isWaitTimeout(), "a call's deadline is no wait timeout");

      Map<String, Object> ends = new LinkedHashMap<>();
      calls.clear();
      calls.put("acquire", () -> client.acquire("other", 500, TimeUnit.MILLISECONDS));
      calls.put("release of a tryLock lock", () -> {
        leased.release(timeout);
        return "released";
      });
      calls.put("release of a held lock", () -> {
        held.release(timeout);
        return "released";
      });
      calls.put("resign", () -> {
        campaign.resign(timeout);
        return "resigned";
      });
      ends.putAll(runAll(calls, timeout.plus(WAIT_GRACE).plus(SLACK)));
      assertEquals(Optional.empty(), ends.get("acquire"), "acquire gives up with an empty result");
      assertDeadlineExceeded("release of a tryLock lock", ends.get("release of a tryLock lock"));
      assertDeadlineExceeded("release of a held lock", ends.get("release of a held lock"));
      assertDeadlineExceeded("resign", ends.get("resign"));
      assertFalse(campaign.hasLeadership());
      assertTrue(Duration.ofNanos(System.nanoTime() - start).compareTo(Duration.ofSeconds(10)) < 0);
    }
  }

  @Test
  void aReleaseOnAFrozenSidecarReturnsWhenThePromiseRunsOut() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      SyncClient client = daemon.client();
      Lock lock = client.lock("promise");
      Permit permit = client.semaphore("promise", 2).acquire();
      RWHold rwHold = client.readWriteLock("promise").readLock().acquire();
      daemon.freeze();
      long start = System.nanoTime();
      // A 10 s deadline each, but the 2 s promise ends first: the hold is over.
      Map<String, Callable<Object>> calls = new LinkedHashMap<>();
      calls.put("release of a lock", () -> {
        lock.release();
        return "released";
      });
      calls.put("release of a permit", () -> {
        permit.release();
        return "released";
      });
      calls.put("release of a read-write hold", () -> {
        rwHold.release();
        return "released";
      });
      Map<String, Object> outcomes = runAll(calls, Duration.ofSeconds(2).plus(SLACK));
      assertEquals(
          Map.of(
              "release of a lock", "released",
              "release of a permit", "released",
              "release of a read-write hold", "released"),
          outcomes);
      assertTrue(Duration.ofNanos(System.nanoTime() - start).compareTo(Duration.ofSeconds(2)) <= 0);
      Thread.sleep(500);
      for (StreamHold hold : List.of(lock, permit, rwHold)) {
        assertFalse(hold.isLost(), "a release is not a loss");
        assertFalse(hold.isHeld());
      }
    }
  }

  @Test
  void everySemaphoreCallReturnsWithinItsDeadlineOnAFrozenSidecar() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      Semaphore semaphore = client.semaphore("frozen-semaphore", 3);
      LockOptions longLease = LockOptions.defaults().withLeaseDuration(LONG_LEASE);
      LeasedPermit leased = semaphore.tryAcquire(longLease).permit().orElseThrow();
      LeasedPermit leasedToo = semaphore.tryAcquire(longLease).permit().orElseThrow();
      Permit held = semaphore.acquire(longLease).orElseThrow();

      daemon.freeze();
      Duration timeout = Duration.ofMillis(500);
      Map<String, Callable<Object>> calls = new LinkedHashMap<>();
      calls.put("tryAcquire", () -> semaphore.tryAcquire(LockOptions.defaults(), timeout));
      calls.put("renew", () -> leased.renew(null, timeout));
      calls.put("renew by hold id", () -> semaphore.renew(leasedToo.holdId(), null, timeout));
      calls.put("getSemaphore", () -> client.getSemaphore("frozen-semaphore", true, timeout));
      calls.put("release of a held permit", () -> {
        held.release(timeout);
        return "released";
      });
      calls.put("release by hold id", () -> {
        semaphore.release(leasedToo.holdId(), timeout);
        return "released";
      });
      calls.put("acquire", () -> semaphore.acquire(timeout));
      calls.put("acquire (time, unit)", () -> semaphore.acquire(500, TimeUnit.MILLISECONDS));
      Map<String, Object> outcomes = runAll(calls, timeout.plus(WAIT_GRACE).plus(SLACK));
      assertEquals(Optional.empty(), outcomes.remove("acquire"), "acquire gives up with an empty result");
      assertEquals(Optional.empty(), outcomes.remove("acquire (time, unit)"));
      outcomes.forEach(FrozenSidecarTest::assertDeadlineExceeded);

      // The same calls given no deadline get the default one.
      calls.clear();
      calls.put("tryAcquire", semaphore::tryAcquire);
      calls.put("renew", leased::renew);
      calls.put("getSemaphore", () -> client.getSemaphore("frozen-semaphore"));
      calls.put("release of a tryAcquire permit", () -> {
        leased.release();
        return "released";
      });
      long start = System.nanoTime();
      runAll(calls, CALL_TIMEOUT.plus(SLACK)).forEach(FrozenSidecarTest::assertDeadlineExceeded);
      Duration took = Duration.ofNanos(System.nanoTime() - start);
      assertTrue(took.compareTo(CALL_TIMEOUT) >= 0, "gave up after " + took + ", before the default deadline");
      assertFalse(held.isLost(), "a release is not a loss");
    }
  }

  @Test
  void everyReadWriteLockCallReturnsWithinItsDeadlineOnAFrozenSidecar() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      ReadWriteLock lock = client.readWriteLock("frozen-rw");
      LockOptions longLease = LockOptions.defaults().withLeaseDuration(LONG_LEASE);
      LeasedRWHold leased = lock.readLock().tryAcquire(longLease).hold().orElseThrow();
      LeasedRWHold leasedToo = lock.readLock().tryAcquire(longLease).hold().orElseThrow();
      RWHold held = lock.readLock().acquire(longLease).orElseThrow();

      daemon.freeze();
      Duration timeout = Duration.ofMillis(500);
      Map<String, Callable<Object>> calls = new LinkedHashMap<>();
      calls.put("tryAcquire", () -> lock.writeLock().tryAcquire(LockOptions.defaults(), timeout));
      calls.put("renew", () -> leased.renew(null, timeout));
      calls.put("renew by hold id", () -> lock.renew(leasedToo.holdId(), null, timeout));
      calls.put("get", () -> lock.get(true, timeout));
      calls.put("release of a held hold", () -> {
        held.release(timeout);
        return "released";
      });
      calls.put("release by hold id", () -> {
        lock.release(leasedToo.holdId(), timeout);
        return "released";
      });
      calls.put("acquire", () -> lock.readLock().acquire(timeout));
      calls.put("acquire (time, unit)", () -> lock.writeLock().acquire(500, TimeUnit.MILLISECONDS));
      Map<String, Object> outcomes = runAll(calls, timeout.plus(WAIT_GRACE).plus(SLACK));
      assertEquals(Optional.empty(), outcomes.remove("acquire"), "acquire gives up with an empty result");
      assertEquals(Optional.empty(), outcomes.remove("acquire (time, unit)"));
      outcomes.forEach(FrozenSidecarTest::assertDeadlineExceeded);

      // The same calls given no deadline get the default one; a blocking acquire() its default
      // wait, which is minutes, so it is bounded here by a wait of its own instead.
      calls.clear();
      calls.put("tryAcquire", () -> lock.readLock().tryAcquire());
      calls.put("renew", leased::renew);
      calls.put("get", () -> lock.get());
      calls.put("release of a tryAcquire hold", () -> {
        leased.release();
        return "released";
      });
      long start = System.nanoTime();
      runAll(calls, CALL_TIMEOUT.plus(SLACK)).forEach(FrozenSidecarTest::assertDeadlineExceeded);
      Duration took = Duration.ofNanos(System.nanoTime() - start);
      assertTrue(took.compareTo(CALL_TIMEOUT) >= 0, "gave up after " + took + ", before the default deadline");
      assertFalse(held.isLost(), "a release is not a loss");
    }
  }

  @Test
  void keepaliveEndsAnObservationButNotACallBeforeItsDeadline() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      BlockingQueue<Leader> seen = new LinkedBlockingQueue<>();
      Observation observation = client.observe("watched", seen::add);
      assertTrue(seen.poll(10, TimeUnit.SECONDS) != null, "no leader seen");
      daemon.freeze();
      long start = System.nanoTime();
      CompletableFuture<Duration> observationEnded =
          observation.done().handle((ok, error) -> Duration.ofNanos(System.nanoTime() - start));
      // Keepalive gives up on the streams' connection within 15 s of its last read; this call's
      // deadline comes later, and it is the deadline that must end it, not the keepalive.
      Duration timeout = SyncClient.KEEPALIVE_TIME.plus(SyncClient.KEEPALIVE_TIMEOUT).plus(Duration.ofSeconds(2));
      Object outcome =
          runAll(Map.of("getLock", () -> client.getLock("watched", true, timeout)), timeout.plus(SLACK)).get("getLock");
      assertDeadlineExceeded("getLock", outcome);
      assertTrue(Duration.ofNanos(System.nanoTime() - start).compareTo(timeout) >= 0);

      Duration noticed = observationEnded.getNow(null);
      assertTrue(noticed != null, "keepalive did not end the observation");
      Duration bound = SyncClient.KEEPALIVE_TIME.plus(SyncClient.KEEPALIVE_TIMEOUT).plus(SLACK);
      assertTrue(noticed.compareTo(bound) <= 0, "the observation ended " + noticed + " after the freeze");
      ExecutionException ended = assertThrows(ExecutionException.class, () -> observation.done().get());
      assertEquals(SyncException.Code.UNAVAILABLE, ((SyncException) ended.getCause()).code());
    }
  }
}
