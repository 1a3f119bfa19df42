package io.metaparticle.bench.curator;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;

/**
 * Hot-lock load: {@code sessions} threads, each with its own Curator client (so its own
 * ZooKeeper session) and its own recipe instance on one path, take a permit and give it back
 * (at once, or after {@code holdMs}), in a loop, for {@code durationMs} after a {@code go} line
 * on stdin (or at once with {@code --go}). The mutex is an
 * {@code InterProcessMutex}; the semaphore an {@code InterProcessSemaphoreV2} of {@code permits}
 * leases; the read-write lock an {@code InterProcessReadWriteLock}, whose session takes its write
 * lock on every {@code exclusiveEvery}-th acquisition (offset by the session's number, so the
 * writers are spread over the sessions) and its read lock otherwise. Every wait is bounded by the
 * time left, so the loop ends on time even while waiting.
 *
 * <p>Events: {@code started} once every session is connected, then one {@code summary} with the
 * acquisitions, failures, and {@code holds}: for every acquisition, three times in microseconds
 * of mono_ns's clock, flattened: when acquire returned, when the release began and when it
 * returned. From the holds of all processes the harness derives the handoff latency (a release
 * to the acquisition it made room for) and checks that no more than {@code permits} holds ever
 * overlapped. Also {@code asked}, one stamp per hold in the same order (when its acquire was
 * called), and {@code modes}, one per hold: 1 for an exclusive hold (a mutex's, a write lock's), 0
 * for a shared one (a semaphore lease, a read lock). Then it waits for a line on stdin (or its end, or 60 s), closes the sessions and
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
  private final int exclusiveEvery;
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
      int exclusiveEvery,
      boolean startNow) {
    this.connector = connector;
    this.mode = mode;
    this.path = path;
    this.identity = identity;
    this.permits = permits;
    this.sessions = sessions;
    this.durationMs = durationMs;
    this.holdMs = holdMs;
    this.exclusiveEvery = exclusiveEvery;
    this.startNow = startNow;
  }

  /** One session's way to take a permit within a time, and give it back. */
  private interface Permit {
    /** False when the time ran out first. */
    boolean acquire(long waitMs) throws Exception;

    void release() throws Exception;

    /** Whether the last permit acquired is exclusive (see the {@code modes} of the summary). */
    boolean exclusive();
  }

  /** A mutex taken and given back as a Permit: {@code exclusive} says what it stands for. */
  private static Permit mutexPermit(InterProcessMutex mutex, boolean exclusive) {
    return new Permit() {
      public boolean acquire(long waitMs) throws Exception {
        return mutex.acquire(waitMs, TimeUnit.MILLISECONDS);
      }

      public void release() throws Exception {
        mutex.release();
      }

      public boolean exclusive() {
        return exclusive;
      }
    };
  }

  private Permit permit(CuratorFramework client, int session) {
    if (mode.equals("mutex")) return mutexPermit(new InterProcessMutex(client, path), true);
    if (mode.equals("rwlock")) {
      InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, path);
      Permit read = mutexPermit(rw.readLock(), false);
      Permit write = mutexPermit(rw.writeLock(), true);
      return new Permit() {
        private long acquisitions;
        private Permit current = read;

        public boolean acquire(long waitMs) throws Exception {
          current = (acquisitions++ + session) % exclusiveEvery == 0 ? write : read;
          return current.acquire(waitMs);
        }

        public void release() throws Exception {
          current.release();
        }

        public boolean exclusive() {
          return current.exclusive();
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

      public boolean exclusive() {
        return false;
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
      permitsOf.add(permit(client, i));
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
    List<List<Long>> asks = new ArrayList<>();
    List<List<Integer>> kinds = new ArrayList<>();
    AtomicLong failures = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      int session = i;
      Permit permit = permitsOf.get(i);
      List<Long> mine = new ArrayList<>();
      List<Long> myAsks = new ArrayList<>();
      List<Integer> myKinds = new ArrayList<>();
      holds.add(mine);
      asks.add(myAsks);
      kinds.add(myKinds);
      Thread t =
          new Thread(
              () -> {
                while (true) {
                  long leftMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                  if (leftMs <= 0) return;
                  long askedAt = Events.monoMicros();
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
                  myAsks.add(askedAt);
                  myKinds.add(permit.exclusive() ? 1 : 0);
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
    List<Long> flatAsks = new ArrayList<>();
    List<Integer> flatKinds = new ArrayList<>();
    for (int i = 0; i < sessions; i++) {
      total += counts[i];
      perSession.add(counts[i]);
      if (ended[i]) { // a stuck thread's lists may still change
        flat.addAll(holds.get(i));
        flatAsks.addAll(asks.get(i));
        flatKinds.addAll(kinds.get(i));
      }
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
        .with("asked", flatAsks)
        .with("modes", flatKinds)
        .emit();
    // The sessions stay open until told, so that the harness can read the server's request
    // counters with nothing but the loop counted (closing a session is a request too).
    commands.poll(60, TimeUnit.SECONDS);
    CuratorPeer.closeAll(clients);
    Events.line("exit").with("id", identity).emit();
    System.exit(0);
  }
}
