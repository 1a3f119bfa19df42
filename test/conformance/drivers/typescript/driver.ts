// The TypeScript conformance driver (test/conformance/PROTOCOL.md): performs
// each command through metaparticle-sync-client and reports what it says.
import { createInterface } from "node:readline";
import {
  type Campaign,
  type LeasedLock,
  type LeasedPermit,
  type LeasedRWLockHold,
  type Lock,
  LostError,
  type Permit,
  type PermitHolderInfo,
  type RWLockHold,
  type RWLockMode,
  SyncClient,
  SyncClientError,
  status,
} from "metaparticle-sync-client";

type Args = Record<string, unknown> & { id: number; op: string };

const clients = new Map<string, SyncClient>();
/** Locks, semaphore permits and read-write holds, held by a stream or for a lease: each has `release()`, a lease also `renew()`. */
type Held = Lock | LeasedLock | Permit | LeasedPermit | RWLockHold | LeasedRWLockHold;
const locks = new Map<string, Held>();
const campaigns = new Map<string, Campaign>();
const observations = new Map<string, AbortController>();

function write(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function client(args: Args): SyncClient {
  const found = clients.get(String(args.client));
  if (found === undefined) throw new SyncClientError(status.UNIMPLEMENTED, `no client ${String(args.client)}`);
  return found;
}

function opt<T>(value: unknown): T | undefined {
  return value === undefined || value === null ? undefined : (value as T);
}

/** The command's deadline (`timeoutMs`), as every call of the wrapper takes it; absent: the wrapper's default. */
function deadline(args: Args): { timeoutMs?: number } {
  const timeoutMs = opt<number>(args.timeoutMs);
  return timeoutMs === undefined ? {} : { timeoutMs };
}

/** What every acquisition takes from the command; the wrapper's defaults for what it does not say. */
function holdOptions(args: Args) {
  return {
    holder: opt<string>(args.holder),
    leaseDurationMs: opt<number>(args.leaseDurationMs),
    waitTimeoutMs: opt<number>(args.waitTimeoutMs),
    ...deadline(args),
  };
}

/** Keeps a hold under its handle (`as`) and reports its loss from now on. */
function keep<H extends Held>(args: Args, hold: H): H {
  locks.set(String(args.as), hold);
  watchLoss(String(args.as), hold.signal);
  return hold;
}

/** Reports the lock's signal when it fires for a loss; a normal release has reason "released". */
function watchLoss(handle: string, signal: AbortSignal): void {
  signal.addEventListener(
    "abort",
    () => {
      const reason = signal.reason as LostError;
      if (reason instanceof LostError && reason.reason === "released") return;
      write({ event: "lost", handle, reason: reason.reason, message: reason.message });
    },
    { once: true },
  );
}

async function perform(args: Args): Promise<Record<string, unknown>> {
  switch (args.op) {
    case "connect":
      clients.set(String(args.as), new SyncClient({ address: String(args.address) }));
      return {};
    case "lock": {
      const lock = await client(args).lock(String(args.name), { ...holdOptions(args), fair: opt<boolean>(args.fair) });
      keep(args, lock);
      return { token: lock.token, holder: lock.holder };
    }
    case "tryLock": {
      const lock = await client(args).tryLock(String(args.name), holdOptions(args));
      if (lock === undefined) return { acquired: false };
      keep(args, lock);
      return { acquired: true, token: lock.token, validForMs: Math.round(lock.validForMs) };
    }
    case "acquirePermit": {
      const permit = await client(args).semaphore(String(args.name), Number(args.permits)).acquire(holdOptions(args));
      keep(args, permit);
      return { token: permit.token, holder: permit.holder, permits: permit.permits, holdId: permit.holdId };
    }
    case "tryAcquirePermit": {
      const attempt = await client(args).semaphore(String(args.name), Number(args.permits)).tryAcquire(holdOptions(args));
      const permit = attempt.permit;
      if (permit === undefined) return { acquired: false, holders: attempt.holders.map(holderOf) };
      keep(args, permit);
      return {
        acquired: true,
        token: permit.token,
        holder: permit.holder,
        permits: permit.permits,
        holdId: permit.holdId,
        validForMs: Math.round(permit.validForMs),
      };
    }
    case "getSemaphore": {
      const info = await client(args).getSemaphore(String(args.name), { fresh: args.fresh === true, ...deadline(args) });
      return { permits: info.permits, token: info.token, holders: info.holders.map(holderOf) };
    }
    case "acquireRW": {
      const hold = await client(args)
        .rwlock(String(args.name))
        .acquire(String(args.mode) as RWLockMode, holdOptions(args));
      keep(args, hold);
      return { token: hold.token, holder: hold.holder, mode: hold.mode, holdId: hold.holdId };
    }
    case "tryAcquireRW": {
      const attempt = await client(args)
        .rwlock(String(args.name))
        .tryAcquire(String(args.mode) as RWLockMode, holdOptions(args));
      const hold = attempt.hold;
      if (hold === undefined) return { acquired: false, mode: attempt.state.mode ?? "" };
      keep(args, hold);
      return {
        acquired: true,
        token: hold.token,
        holder: hold.holder,
        mode: hold.mode,
        holdId: hold.holdId,
        validForMs: Math.round(hold.validForMs),
      };
    }
    case "getRWLock": {
      const info = await client(args)
        .rwlock(String(args.name))
        .get({ fresh: args.fresh === true, ...deadline(args) });
      const readers = info.readers.reduce((sum, seat) => sum + seat.readers, 0);
      return { mode: info.mode ?? "", holder: info.holder, token: info.token, readers };
    }
    case "renew": {
      const lock = locks.get(String(args.handle));
      if (lock === undefined || !("renew" in lock)) throw unknownHandle(args);
      return { validForMs: Math.round(await lock.renew({ leaseDurationMs: opt(args.leaseDurationMs), ...deadline(args) })) };
    }
    case "release": {
      const lock = locks.get(String(args.handle));
      if (lock === undefined) throw unknownHandle(args);
      await lock.release(deadline(args));
      return {};
    }
    case "getLock": {
      const info = await client(args).getLock(String(args.name), { fresh: args.fresh === true, ...deadline(args) });
      return { held: info.held, holder: info.holder, token: info.token };
    }
    case "campaign": {
      const handle = String(args.as);
      const campaign = client(args).campaign(String(args.name), {
        candidate: opt(args.candidate),
        value: opt(args.value),
        leaseDurationMs: opt(args.leaseDurationMs),
      });
      campaigns.set(handle, campaign);
      void (async () => {
        try {
          for await (const event of campaign) {
            if (event.type === "elected") write({ event: "elected", handle, term: event.term });
            else if (event.type === "deposed")
              write({ event: "deposed", handle, term: event.term, reason: event.reason, message: event.message });
            else write({ event: "leader-changed", handle, leader: event.leader, value: event.value, term: event.term });
          }
          write({ event: "campaign-ended", handle });
        } catch (err) {
          write({ event: "campaign-ended", handle, error: errorOf(err) });
        }
      })();
      return {};
    }
    case "proclaim":
      await campaignOf(args).proclaim(String(args.value), deadline(args));
      return {};
    case "resign":
      await campaignOf(args).resign(deadline(args));
      return {};
    case "getLeader": {
      const leader = await client(args).getLeader(String(args.name), { fresh: args.fresh === true, ...deadline(args) });
      return { leader: leader.leader, value: leader.value, term: leader.term };
    }
    case "observe": {
      const handle = String(args.as);
      const controller = new AbortController();
      observations.set(handle, controller);
      const leaders = client(args).observe(String(args.name), { signal: controller.signal });
      void (async () => {
        try {
          for await (const leader of leaders) write({ event: "leader", handle, ...leader });
          write({ event: "observe-ended", handle });
        } catch (err) {
          write({ event: "observe-ended", handle, error: errorOf(err) });
        }
      })();
      return {};
    }
    case "close": {
      const handle = String(args.handle);
      if (locks.has(handle)) await locks.get(handle)!.release(deadline(args));
      else if (campaigns.has(handle)) await campaigns.get(handle)![Symbol.asyncDispose]();
      else if (observations.has(handle)) observations.get(handle)!.abort();
      else if (clients.has(handle)) clients.get(handle)!.close();
      else throw unknownHandle(args);
      return {};
    }
    default:
      throw new SyncClientError(status.UNIMPLEMENTED, `unknown op ${args.op}`);
  }
}

function campaignOf(args: Args): Campaign {
  const campaign = campaigns.get(String(args.handle));
  if (campaign === undefined) throw unknownHandle(args);
  return campaign;
}

function holderOf(h: PermitHolderInfo): Record<string, unknown> {
  return { holder: h.holder, token: h.token };
}

function unknownHandle(args: Args): SyncClientError {
  return new SyncClientError(status.UNIMPLEMENTED, `no such handle for ${args.op}: ${String(args.handle)}`);
}

/** The protocol's error kinds, from the reason the wrapper's one error type carries. */
const KINDS: Readonly<Record<string, string>> = {
  PERMITS_MISMATCH: "permits-mismatch",
  NOT_HELD: "not-held",
  WAIT_TIMEOUT: "wait-timeout",
};

function errorOf(err: unknown): Record<string, unknown> {
  if (err instanceof SyncClientError)
    return { code: status[err.code], field: err.field ?? null, kind: KINDS[err.reason ?? ""] ?? null, message: err.message };
  return { code: "UNKNOWN", field: null, kind: null, message: err instanceof Error ? err.message : String(err) };
}

write({ event: "ready", language: "typescript", client: "metaparticle-sync-client" });
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const args = JSON.parse(line) as Args;
  try {
    write({ id: args.id, ok: true, ...(await perform(args)) });
  } catch (err) {
    write({ id: args.id, ok: false, error: errorOf(err) });
  }
}
// In parallel, each bounded: the driver must exit within 10 s even with its sidecars frozen.
await Promise.all([...locks.values()].map((lock) => lock.release({ timeoutMs: 2000 }).catch(() => {})));
for (const campaign of campaigns.values()) campaign.close();
for (const observation of observations.values()) observation.abort();
for (const c of clients.values()) c.close();
process.exit(0);
