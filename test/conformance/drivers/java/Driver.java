// The Java conformance driver (test/conformance/PROTOCOL.md): performs each
// command through io.metaparticle.sync.client and reports what it says. A
// command's `timeoutMs` is passed as that call's Duration; absent, the call
// gets the wrapper's default. It runs as a single-file program; JSON is read
// and written with Gson, which gRPC already brings onto the classpath.
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.metaparticle.sync.client.Campaign;
import io.metaparticle.sync.client.CampaignOptions;
import io.metaparticle.sync.client.ElectionListener;
import io.metaparticle.sync.client.LeasedLock;
import io.metaparticle.sync.client.LeasedPermit;
import io.metaparticle.sync.client.LeasedRWHold;
import io.metaparticle.sync.client.Leader;
import io.metaparticle.sync.client.Leadership;
import io.metaparticle.sync.client.Lock;
import io.metaparticle.sync.client.LockInfo;
import io.metaparticle.sync.client.LockMode;
import io.metaparticle.sync.client.LockOptions;
import io.metaparticle.sync.client.Loss;
import io.metaparticle.sync.client.Observation;
import io.metaparticle.sync.client.Permit;
import io.metaparticle.sync.client.PermitAttempt;
import io.metaparticle.sync.client.PermitHolder;
import io.metaparticle.sync.client.RWAttempt;
import io.metaparticle.sync.client.RWHold;
import io.metaparticle.sync.client.RWLockInfo;
import io.metaparticle.sync.client.RWLockSide;
import io.metaparticle.sync.client.ReadWriteLock;
import io.metaparticle.sync.client.Semaphore;
import io.metaparticle.sync.client.SemaphoreInfo;
import io.metaparticle.sync.client.SyncClient;
import io.metaparticle.sync.client.SyncException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

public class Driver {
  private static final Map<String, SyncClient> clients = new HashMap<>();
  private static final Map<String, Lock> locks = new HashMap<>();
  private static final Map<String, LeasedLock> leases = new HashMap<>();
  private static final Map<String, Campaign> campaigns = new HashMap<>();
  private static final Map<String, Observation> observations = new HashMap<>();
  private static final Map<String, Permit> permits = new HashMap<>();
  private static final Map<String, LeasedPermit> permitLeases = new HashMap<>();
  /** The semaphore of each leased permit, whose release by hold serves a permit released before. */
  private static final Map<String, Semaphore> semaphoreOf = new HashMap<>();
  private static final Map<String, RWHold> rwHolds = new HashMap<>();
  private static final Map<String, LeasedRWHold> rwLeases = new HashMap<>();
  /** The read-write lock of each leased hold, whose release by hold serves a hold released before. */
  private static final Map<String, ReadWriteLock> rwLockOf = new HashMap<>();
  /** The leased permits and read-write holds released. */
  private static final Set<String> released = new HashSet<>();

  static final class Unimplemented extends RuntimeException {
    Unimplemented(String message) {
      super(message);
    }
  }

  private static final Gson GSON = new GsonBuilder().serializeNulls().create();

  static synchronized void write(Map<String, Object> message) {
    System.out.println(GSON.toJson(message));
    System.out.flush();
  }

  static Map<String, Object> message(Object... pairs) {
    Map<String, Object> map = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) map.put((String) pairs[i], pairs[i + 1]);
    return map;
  }

  static Map<String, Object> errorOf(Throwable error) {
    if (error instanceof SyncException e)
      return message("code", e.code().name(), "field", e.field(), "kind", kindOf(e), "message", e.getMessage());
    if (error instanceof Unimplemented)
      return message("code", "UNIMPLEMENTED", "field", null, "kind", null, "message", error.getMessage());
    if (error instanceof WaitTimedOut)
      return message("code", "DEADLINE_EXCEEDED", "field", null, "kind", "wait-timeout", "message", error.getMessage());
    return message("code", "UNKNOWN", "field", null, "kind", null, "message", String.valueOf(error));
  }

  /** The protocol's name for the kind of SyncException the wrapper says this is, if one it names. */
  static String kindOf(SyncException e) {
    if (e.isPermitsMismatch()) return "permits-mismatch";
    if (SyncException.NOT_HELD.equals(e.reason())) return "not-held";
    if (e.isWaitTimeout()) return "wait-timeout";
    return null;
  }

  static List<Map<String, Object>> holdersOf(List<PermitHolder> holders) {
    return holders.stream().map(h -> message("holder", h.holder(), "token", h.token())).toList();
  }

  static Semaphore semaphore(JsonObject c) {
    return client(c).semaphore(str(c, "name"), c.get("permits").getAsInt());
  }

  /** The side of read-write lock `name` that holds it in `mode` ("shared" or "exclusive"). */
  static RWLockSide rwSide(JsonObject c) {
    ReadWriteLock lock = client(c).readWriteLock(str(c, "name"));
    return switch (str(c, "mode")) {
      case "shared" -> lock.readLock();
      case "exclusive" -> lock.writeLock();
      default -> throw new Unimplemented("no mode " + str(c, "mode"));
    };
  }

  /** The protocol's name of a mode: "shared", "exclusive", or "" for none. */
  static String modeOf(LockMode mode) {
    return mode == null ? "" : mode.name().toLowerCase(java.util.Locale.ROOT);
  }

  /** Forwards the wrapper's loss signal of what `handle` names as a `lost` event. */
  static void watchLost(String handle, CompletableFuture<Loss> lost) {
    lost.thenAccept(loss -> write(message("event", "lost", "handle", handle, "reason", loss.reason(), "message", loss.message())));
  }

  static String str(JsonObject c, String key) {
    JsonElement v = c.get(key);
    return v == null || v.isJsonNull() ? null : v.getAsString();
  }

  static Duration ms(JsonObject c, String key) {
    JsonElement v = c.get(key);
    return v == null || v.isJsonNull() ? null : Duration.ofMillis(v.getAsLong());
  }

  /** The command's deadline (`timeoutMs`), else the wrapper's default for that call. */
  static Duration timeout(JsonObject c) {
    Duration timeout = ms(c, "timeoutMs");
    return timeout != null ? timeout : SyncClient.DEFAULT_CALL_TIMEOUT;
  }

  /** An optional boolean: null when absent, so that the wrapper's default applies. */
  static Boolean bool(JsonObject c, String key) {
    JsonElement v = c.get(key);
    return v == null || v.isJsonNull() ? null : v.getAsBoolean();
  }

  static boolean flag(JsonObject c, String key) {
    JsonElement v = c.get(key);
    return v != null && !v.isJsonNull() && v.getAsBoolean();
  }

  static SyncClient client(JsonObject c) {
    SyncClient client = clients.get(str(c, "client"));
    if (client == null) throw new Unimplemented("no client " + str(c, "client"));
    return client;
  }

  static LockOptions lockOptions(JsonObject c) {
    return LockOptions.defaults().withHolder(str(c, "holder")).withLeaseDuration(ms(c, "leaseDurationMs"));
  }

  /**
   * The blocking lock's wait: its wait timeout, bounded by the command's deadline if it has one
   * (a Java caller passes the shorter as the wait timeout); absent both, the wrapper's default.
   */
  static Duration lockWait(JsonObject c) {
    Duration wait = ms(c, "waitTimeoutMs");
    Duration deadline = ms(c, "timeoutMs");
    if (wait == null) return deadline;
    if (deadline == null) return wait;
    return wait.compareTo(deadline) <= 0 ? wait : deadline;
  }

  static String reasonOf(Loss loss) {
    return Loss.RELEASED.equals(loss.reason()) ? "resigned" : loss.reason();
  }

  static Map<String, Object> perform(JsonObject c) throws Exception {
    String op = str(c, "op");
    switch (op) {
      case "connect" -> {
        clients.put(str(c, "as"), SyncClient.create(str(c, "address")));
        return message();
      }
      case "lock" -> {
        LockOptions options = lockOptions(c).withWaitTimeout(lockWait(c));
        Boolean fair = bool(c, "fair");
        if (fair != null) options = options.withFair(fair);
        Lock lock = client(c).lock(str(c, "name"), options);
        String handle = str(c, "as");
        locks.put(handle, lock);
        watchLost(handle, lock.lost());
        return message("token", lock.token(), "holder", lock.holder());
      }
      case "tryLock" -> {
        Optional<LeasedLock> lease = client(c).tryLock(str(c, "name"), lockOptions(c), timeout(c));
        if (lease.isEmpty()) return message("acquired", false);
        leases.put(str(c, "as"), lease.get());
        return message("acquired", true, "token", lease.get().token(), "validForMs", lease.get().validFor().toMillis());
      }
      case "acquirePermit" -> {
        Semaphore semaphore = semaphore(c);
        // The wait, bounded by the command's deadline, as for a lock; Curator-style, a wait that
        // timed out is an empty result rather than an exception.
        Optional<Permit> acquired = semaphore.acquire(lockOptions(c).withWaitTimeout(lockWait(c)));
        if (acquired.isEmpty()) throw new WaitTimedOut("acquire returned empty: no permit within the wait timeout");
        Permit permit = acquired.get();
        String handle = str(c, "as");
        permits.put(handle, permit);
        watchLost(handle, permit.lost());
        return message("token", permit.token(), "holder", permit.holder(), "permits", permit.permits(), "holdId", permit.holdId());
      }
      case "tryAcquirePermit" -> {
        Semaphore semaphore = semaphore(c);
        PermitAttempt attempt = semaphore.tryAcquire(lockOptions(c), timeout(c));
        if (attempt.permit().isEmpty()) return message("acquired", false, "holders", holdersOf(attempt.holders()));
        LeasedPermit permit = attempt.permit().get();
        permitLeases.put(str(c, "as"), permit);
        semaphoreOf.put(str(c, "as"), semaphore);
        return message(
            "acquired", true, "token", permit.token(), "holder", permit.holder(), "permits", permit.permits(),
            "holdId", permit.holdId(), "validForMs", permit.validFor().toMillis());
      }
      case "getSemaphore" -> {
        SemaphoreInfo info = client(c).getSemaphore(str(c, "name"), flag(c, "fresh"), timeout(c));
        return message("permits", info.permits(), "token", info.token(), "holders", holdersOf(info.holders()));
      }
      case "acquireRW" -> {
        // The wait, bounded by the command's deadline, and an empty result on a wait timeout, as
        // for a permit.
        Optional<RWHold> acquired = rwSide(c).acquire(lockOptions(c).withWaitTimeout(lockWait(c)));
        if (acquired.isEmpty()) throw new WaitTimedOut("acquire returned empty: not held within the wait timeout");
        RWHold hold = acquired.get();
        String handle = str(c, "as");
        rwHolds.put(handle, hold);
        watchLost(handle, hold.lost());
        return message("token", hold.token(), "holder", hold.holder(), "mode", modeOf(hold.mode()), "holdId", hold.holdId());
      }
      case "tryAcquireRW" -> {
        RWLockSide side = rwSide(c);
        RWAttempt attempt = side.tryAcquire(lockOptions(c), timeout(c));
        if (attempt.hold().isEmpty())
          return message("acquired", false, "mode", modeOf(attempt.state().map(RWLockInfo::mode).orElse(null)));
        LeasedRWHold hold = attempt.hold().get();
        String handle = str(c, "as");
        rwLeases.put(handle, hold);
        rwLockOf.put(handle, side.lock());
        watchLost(handle, hold.lost());
        return message(
            "acquired", true, "token", hold.token(), "holder", hold.holder(), "mode", modeOf(hold.mode()),
            "holdId", hold.holdId(), "validForMs", hold.validFor().toMillis());
      }
      case "getRWLock" -> {
        RWLockInfo info = client(c).readWriteLock(str(c, "name")).get(flag(c, "fresh"), timeout(c));
        return message("mode", modeOf(info.mode()), "holder", info.holder(), "token", info.token(), "readers", info.readerCount());
      }
      case "renew" -> {
        String handle = str(c, "handle");
        if (rwLeases.containsKey(handle))
          return message("validForMs", rwLeases.get(handle).renew(ms(c, "leaseDurationMs"), timeout(c)).toMillis());
        if (permitLeases.containsKey(handle))
          return message("validForMs", permitLeases.get(handle).renew(ms(c, "leaseDurationMs"), timeout(c)).toMillis());
        LeasedLock lease = leases.get(handle);
        if (lease == null) throw new Unimplemented("no lease " + handle);
        return message("validForMs", lease.renew(ms(c, "leaseDurationMs"), timeout(c)).toMillis());
      }
      case "getLock" -> {
        LockInfo info = client(c).getLock(str(c, "name"), flag(c, "fresh"), timeout(c));
        return message("held", info.held(), "holder", info.holder(), "token", info.token());
      }
      case "getLeader" -> {
        Leader leader = client(c).getLeader(str(c, "name"), flag(c, "fresh"), timeout(c));
        return message("leader", leader.leader(), "value", leader.value(), "term", leader.term());
      }
      case "campaign" -> {
        String handle = str(c, "as");
        CampaignOptions options =
            CampaignOptions.defaults().withCandidate(str(c, "candidate")).withLeaseDuration(ms(c, "leaseDurationMs"));
        if (str(c, "value") != null) options = options.withValue(str(c, "value"));
        Campaign campaign =
            client(c)
                .campaign(
                    str(c, "name"),
                    options,
                    new ElectionListener() {
                      @Override
                      public void elected(Leadership leadership) {
                        write(message("event", "elected", "handle", handle, "term", leadership.term()));
                      }

                      @Override
                      public void deposed(long term, Loss loss) {
                        write(message("event", "deposed", "handle", handle, "term", term, "reason", reasonOf(loss), "message", loss.message()));
                      }

                      @Override
                      public void leaderChanged(Leader leader) {
                        write(message("event", "leader-changed", "handle", handle, "leader", leader.leader(), "value", leader.value(), "term", leader.term()));
                      }

                      @Override
                      public void ended(SyncException error) {
                        write(message("event", "campaign-ended", "handle", handle, "error", error == null ? null : errorOf(error)));
                      }
                    });
        campaigns.put(handle, campaign);
        return message();
      }
      case "proclaim" -> {
        campaign(c).proclaim(str(c, "value"), timeout(c));
        return message();
      }
      case "resign" -> {
        campaign(c).resign(timeout(c));
        return message();
      }
      case "observe" -> {
        String handle = str(c, "as");
        Observation observation =
            client(c).observe(str(c, "name"), leader -> write(message("event", "leader", "handle", handle, "leader", leader.leader(), "value", leader.value(), "term", leader.term())));
        observations.put(handle, observation);
        observation.done().whenComplete((ok, error) -> write(message("event", "observe-ended", "handle", handle, "error", error == null ? null : errorOf(error))));
        return message();
      }
      case "release", "close" -> {
        String handle = str(c, "handle");
        // release is the wrappers' acknowledged release, with the command's deadline.
        if (locks.containsKey(handle)) locks.get(handle).release(timeout(c));
        else if (leases.containsKey(handle)) leases.get(handle).release(timeout(c));
        else if (permits.containsKey(handle)) permits.get(handle).release(timeout(c));
        else if (rwHolds.containsKey(handle)) rwHolds.get(handle).release(timeout(c));
        // A LeasedPermit's release returns at once once it was released (other wrappers ask the
        // sidecar again): released again, it goes by its hold, through the semaphore.
        else if (released.contains(handle) && semaphoreOf.containsKey(handle))
          semaphoreOf.get(handle).release(permitLeases.get(handle).holdId(), timeout(c));
        // The same for a LeasedRWHold: released again, through its read-write lock by its hold.
        else if (released.contains(handle)) rwLockOf.get(handle).release(rwLeases.get(handle).holdId(), timeout(c));
        else if (permitLeases.containsKey(handle)) {
          permitLeases.get(handle).release(timeout(c));
          released.add(handle);
        }
        else if (rwLeases.containsKey(handle)) {
          rwLeases.get(handle).release(timeout(c));
          released.add(handle);
        }
        else if (op.equals("close") && campaigns.containsKey(handle)) campaigns.get(handle).close();
        else if (op.equals("close") && observations.containsKey(handle)) observations.get(handle).close();
        else if (op.equals("close") && clients.containsKey(handle)) clients.get(handle).close();
        else throw new Unimplemented("no handle " + handle + " for " + op);
        return message();
      }
      default -> throw new Unimplemented("unknown op " + op);
    }
  }

  static void quietly(Runnable action) {
    try {
      action.run();
    } catch (RuntimeException e) {
      System.err.println("at exit: " + e);
    }
  }

  /** A permit's wait that the wrapper reported timed out by its empty result. */
  static final class WaitTimedOut extends RuntimeException {
    WaitTimedOut(String message) {
      super(message);
    }
  }

  static Campaign campaign(JsonObject c) {
    Campaign campaign = campaigns.get(str(c, "handle"));
    if (campaign == null) throw new Unimplemented("no campaign " + str(c, "handle"));
    return campaign;
  }

  public static void main(String[] args) throws Exception {
    write(message("event", "ready", "language", "java", "client", "io.metaparticle.sync.client"));
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      JsonObject command = JsonParser.parseString(line).getAsJsonObject();
      Object id = command.get("id").getAsLong();
      Map<String, Object> reply;
      try {
        reply = message("id", id, "ok", true);
        reply.putAll(perform(command));
      } catch (Exception e) {
        reply = message("id", id, "ok", false, "error", errorOf(e));
      }
      write(reply);
    }
    // stdin ended: give everything back, each release bounded so that the driver exits within
    // 10 s even if a sidecar is frozen (closing the clients then ends the streams anyway).
    for (Lock lock : locks.values()) quietly(() -> lock.release(Duration.ofSeconds(1)));
    for (LeasedLock lease : leases.values()) quietly(() -> lease.release(Duration.ofSeconds(1)));
    for (Permit permit : permits.values()) quietly(() -> permit.release(Duration.ofSeconds(1)));
    for (LeasedPermit permit : permitLeases.values()) quietly(() -> permit.release(Duration.ofSeconds(1)));
    for (RWHold hold : rwHolds.values()) quietly(() -> hold.release(Duration.ofSeconds(1)));
    for (LeasedRWHold hold : rwLeases.values()) quietly(() -> hold.release(Duration.ofSeconds(1)));
    campaigns.values().forEach(Campaign::close);
    observations.values().forEach(Observation::close);
    clients.values().forEach(SyncClient::close);
    System.exit(0);
  }
}
