package io.metaparticle.bench.curator;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;

/**
 * Hot-lock load: {@code sessions} threads, each with its own Curator client (so its own
 * ZooKeeper session) and its own recipe instance on one path, take a permit and give it back
 * (at once, or after {@code holdMs}), in a loop, for {@code durationMs} after a {@code go} line
 * on stdin (or at once with {@code --go}). The mutex is an
 * {@code InterProcessMutex}; the semaphore an {@code InterProcessSemaphoreV2} of {@code permits}
 * leases. Every wait is bounded by the time left, so the loop ends on time even while waiting.
 *
 * <p>Events: {@code started} once every session is connected, then one {@code summary} with the
 * acquisitions, failures, and {@code holds}: for every acquisition, three times in microseconds
 * of mono_ns's clock, flattened: when acquire returned, when the release began and when it
 * returned. From the holds of all processes the harness derives the handoff latency (a release
 * to the acquisition it made room for) and checks that no more than {@code permits} holds ever
 * overlapped. Then it waits for a line on stdin (or its end, or 60 s), closes the sessions and
 * prints {@code exit}.
 */
final class LockLoop {
  private final CuratorPeer.Connector connector;
  private final String mode;
  private final String path;
  private final String identity;
  private final int permits;
  private final int sessions;
  private final long durationMs;
  private final long holdMs;
  private final boolean startNow;

  LockLoop(
      CuratorPeer.Connector connector,
      String mode,
      String path,
      String identity,
      int permits,
      int sessions,
      long durationMs,
      long holdMs,
      boolean startNow) {
    this.connector = connector;
    this.mode = mode;
    this.path = path;
    this.identity = identity;
    this.permits = permits;
    this.sessions = sessions;
    this.durationMs = durationMs;
    this.holdMs = holdMs;
    this.startNow = startNow;
  }

  /** One session's way to take a permit within a time, and give it back. */
  private interface Permit {
    /** False when the time ran out first. */
    boolean acquire(long waitMs) throws Exception;

    void release() throws Exception;
  }

  private Permit permit(CuratorFramework client) {
    if (mode.equals("mutex")) {
      InterProcessMutex mutex = new InterProcessMutex(client, path);
      return new Permit() {
        public boolean acquire(long waitMs) throws Exception {
          return mutex.acquire(waitMs, TimeUnit.MILLISECONDS);
        }

        public void release() throws Exception {
          mutex.release();
        }
      };
    }
    InterProcessSemaphoreV2 semaphore = new InterProcessSemaphoreV2(client, path, permits);
    return new Permit() {
      private Lease lease;

      public boolean acquire(long waitMs) throws Exception {
        lease = semaphore.acquire(waitMs, TimeUnit.MILLISECONDS);
        return lease != null;
      }

      public void release() throws Exception {
        Lease l = lease;
        lease = null;
        l.close();
      }
    };
  }

  void run() throws Exception {
    List<CuratorFramework> clients = new ArrayList<>();
    List<Permit> permitsOf = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      CuratorFramework client = connector.open();
      clients.add(client);
      permitsOf.add(permit(client));
    }
    Events.line("started")
        .with("id", identity)
        .with("pid", ProcessHandle.current().pid())
        .with("sessions", sessions)
        .with("permits", permits)
        .with("hold_ms", holdMs)
        .with("path", path)
        .emit();
    BlockingQueue<String> commands = CuratorPeer.commands();
    if (!startNow) {
      String command;
      do command = commands.take();
      while (!command.equals("go") && !command.equals("exit"));
      if (command.equals("exit")) {
        CuratorPeer.closeAll(clients);
        System.exit(0);
      }
    }

    long start = System.nanoTime();
    long deadline = start + TimeUnit.MILLISECONDS.toNanos(durationMs);
    long[] counts = new long[sessions];
    List<List<Long>> holds = new ArrayList<>();
    AtomicLong failures = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      int session = i;
      Permit permit = permitsOf.get(i);
      List<Long> mine = new ArrayList<>();
      holds.add(mine);
      Thread t =
          new Thread(
              () -> {
                while (true) {
                  long leftMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                  if (leftMs <= 0) return;
                  try {
                    if (!permit.acquire(leftMs)) return;
                  } catch (Exception e) {
                    failures.incrementAndGet();
                    System.err.println("curator-peer: session " + session + ": acquire: " + e);
                    return;
                  }
                  long acquired = Events.monoMicros();
                  counts[session]++;
                  if (holdMs > 0) {
                    try {
                      Thread.sleep(holdMs);
                    } catch (InterruptedException e) {
                      Thread.currentThread().interrupt();
                    }
                  }
                  long releasing = Events.monoMicros();
                  try {
                    permit.release();
                  } catch (Exception e) {
                    failures.incrementAndGet();
                    System.err.println("curator-peer: session " + session + ": release: " + e);
                    return;
                  }
                  mine.add(acquired);
                  mine.add(releasing);
                  mine.add(Events.monoMicros());
                }
              },
              "locker-" + i);
      threads.add(t);
      t.start();
    }
    // Waits are bounded by the deadline; the margin only guards against a call that ignores it.
    long joinBy = deadline + TimeUnit.SECONDS.toNanos(30);
    boolean stuck = false;
    boolean[] ended = new boolean[sessions];
    for (int i = 0; i < sessions; i++) {
      threads.get(i).join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(joinBy - System.nanoTime())));
      ended[i] = !threads.get(i).isAlive();
      stuck |= !ended[i];
    }
    long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    long total = 0;
    List<Long> perSession = new ArrayList<>();
    List<Long> flat = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      total += counts[i];
      perSession.add(counts[i]);
      if (ended[i]) flat.addAll(holds.get(i)); // a stuck thread's list may still change
    }
    Events.line("summary")
        .with("id", identity)
        .with("mode", mode)
        .with("permits", permits)
        .with("acquired", total)
        .with("per_session", perSession)
        .with("failures", failures.get() + (stuck ? 1 : 0))
        .with("stuck", stuck)
        .with("elapsed_ms", elapsedMs)
        .with("holds", flat)
        .emit();
    // The sessions stay open until told, so that the harness can read the server's request
    // counters with nothing but the loop counted (closing a session is a request too).
    commands.poll(60, TimeUnit.SECONDS);
    CuratorPeer.closeAll(clients);
    Events.line("exit").with("id", identity).emit();
    System.exit(0);
  }
}
