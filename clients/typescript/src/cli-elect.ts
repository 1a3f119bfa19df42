// `metaparticle-sync elect NAME -- CMD`: runs CMD only while this candidate
// leads, and resigns when CMD exits by itself.
import { EXIT, formatDuration } from "./cli-args.js";
import { reconnectDelay, reportFailure, say, sidecarWentAway } from "./cli-calls.js";
import { Child, signalExitCode, trapSignals } from "./cli-child.js";
import { KILL_MARGIN_MS, KillAfterError, fitKillAfter, watchPromise } from "./cli-promise.js";
import type { SyncClient } from "./client.js";
import type { Campaign, Leadership } from "./election.js";
import { LostError, SyncClientError } from "./internal.js";

export interface ElectCommand {
  readonly name: string;
  readonly argv: readonly string[];
  readonly candidate?: string;
  readonly value?: string;
  readonly leaseDuration?: number;
  /** ms, and whether the flag was given (a default is lowered to fit the lease; a flag that does not fit is refused). */
  readonly killAfter: { readonly ms: number; readonly explicit: boolean };
  readonly verbose: boolean;
}

interface Term {
  readonly child: Child;
  readonly term: number;
  /** Set when leadership ended while CMD ran, so its exit is ours, not its own. */
  deposed: boolean;
}

export function runElect(client: SyncClient, options: ElectCommand): Promise<number> {
  return new Promise<number>((resolve) => {
    let current: Term | undefined;
    let interrupted: NodeJS.Signals | undefined;
    let finishing = false;
    /** Whether the sidecar has answered at all: only then is its going away waited out rather than reported. */
    let connected = false;
    /** Joins in a row that ended without the sidecar answering, for the reconnection backoff. */
    let attempt = 0;
    let rejoinTimer: NodeJS.Timeout | undefined;

    /** Ends the campaign, resigning first if this candidate leads, then exits with `code`. */
    const finish = async (code: number) => {
      if (finishing) return;
      finishing = true;
      clearTimeout(rejoinTimer);
      untrap();
      if (campaign.leading) {
        await campaign
          .resign()
          .catch((err: unknown) => say(`could not confirm the resignation from ${options.name}: ${SyncClientError.from(err).message}`));
      }
      campaign.close();
      resolve(code);
    };

    /** Leaves the campaign `joined` and joins again as a fresh candidate: what this side gave up, the sidecar must not renew. */
    const rejoin = (joined: Campaign) => {
      if (joined !== campaign || finishing) return;
      if (options.verbose) say(`leaving the campaign for ${options.name} and joining it again`);
      campaign = join();
      joined.close();
    };

    const lead = async (leadership: Leadership, joined: Campaign) => {
      if (current !== undefined) await current.child.exited; // the last term's CMD is still stopping
      if (leadership.signal.aborted || finishing || interrupted !== undefined) return;
      let killAfter: number;
      try {
        killAfter = fitKillAfter(options.killAfter, joined.validForMs, `the leadership of ${options.name}`);
      } catch (err) {
        if (!(err instanceof KillAfterError)) throw err;
        say(err.message);
        return finish(EXIT.usage);
      }
      if (options.verbose) {
        const lowered = killAfter < options.killAfter.ms ? ` (--kill-after lowered to ${formatDuration(killAfter)} to fit the lease)` : "";
        say(`elected leader of ${options.name} (term ${leadership.term}); running ${options.argv.join(" ")}${lowered}`);
      }
      const term: Term = {
        child: new Child(options.argv, {
          MSYNC_ELECTION_NAME: options.name,
          MSYNC_CANDIDATE: joined.candidate,
          MSYNC_TERM: String(leadership.term),
          MSYNC_ADDRESS: client.address,
        }),
        term: leadership.term,
        deposed: false,
      };
      current = term;
      // No heartbeat while the end of the promise comes near: stop CMD so that SIGKILL lands inside it, and give the term up.
      const unwatch = watchPromise(
        () => (leadership.signal.aborted ? 0 : joined.validForMs),
        killAfter,
        (remaining) => {
          if (finishing || term.deposed || !term.child.running) return;
          term.deposed = true;
          const grace = Math.max(0, remaining - KILL_MARGIN_MS);
          say(
            `leader of ${options.name} (term ${term.term}): no heartbeat from the sidecar, and its promise runs out in ` +
              `${formatDuration(remaining)}: stopping the command (SIGTERM, SIGKILL in ${formatDuration(grace)})`,
          );
          term.child.stop(grace);
          rejoin(joined);
        },
      );
      const onDeposed = () => {
        unwatch();
        if (finishing || term.deposed) return;
        term.deposed = true;
        const reason =
          leadership.signal.reason instanceof LostError ? `${leadership.signal.reason.reason}: ${leadership.signal.reason.message}` : "";
        say(
          `no longer leader of ${options.name} (term ${term.term}): ${reason}; ` +
            `stopping the command (SIGTERM, SIGKILL after ${formatDuration(killAfter)})`,
        );
        term.child.stop(killAfter);
      };
      leadership.signal.addEventListener("abort", onDeposed, { once: true });
      const code = await term.child.exited;
      unwatch();
      leadership.signal.removeEventListener("abort", onDeposed);
      if (current === term) current = undefined;
      if (interrupted !== undefined || !term.deposed) {
        if (options.verbose) say(`the command exited with ${code}; resigning from ${options.name}`);
        return finish(code);
      }
      if (options.verbose) say(`the command stopped with ${code}; still a candidate for ${options.name}`);
    };

    /**
     * Joins the election. The daemon deposes a leader it cannot renew and keeps
     * it as a candidate; but when the sidecar stops answering, only the client's
     * own deadline deposes it, and the daemon may resume and renew a leadership
     * this side has given up. So after a heartbeat timeout this leaves the
     * campaign (giving the leadership back once the sidecar answers) and joins
     * again as a fresh candidate.
     */
    const join = (): Campaign => {
      const joined = client.campaign(options.name, {
        candidate: options.candidate,
        value: options.value,
        leaseDuration: options.leaseDuration,
        onElected: (leadership) => {
          answered();
          void lead(leadership, joined);
        },
        onLeaderChanged: answered,
        onDeposed: (_term, reason) => {
          if (reason === "heartbeat-timeout") rejoin(joined);
        },
      });
      joined.done.then(
        () => ended(joined, undefined),
        (err: unknown) => ended(joined, SyncClientError.from(err)),
      );
      return joined;
    };
    function answered(): void {
      if (attempt > 0) say(`the sidecar at ${client.address} answers again; campaigning in ${options.name}`);
      connected = true;
      attempt = 0;
    }
    let campaign = join();

    const untrap = trapSignals((signal, forward) => {
      interrupted ??= signal;
      if (current?.child.running) {
        if (forward) current.child.signal(signal);
      } else {
        void finish(signalExitCode(signal));
      }
    });

    /**
     * The sidecar ended a campaign this side did not leave; CMD, if it ran, is
     * already deposed and stopping. A sidecar that went away after answering
     * (a restart, a redeploy) is joined again, with backoff, as a fresh
     * candidate; anything else ends this program.
     */
    async function ended(which: Campaign, error: SyncClientError | undefined): Promise<void> {
      if (finishing || which !== campaign) return;
      if (current !== undefined) await current.child.exited;
      if (finishing) return;
      if (connected && sidecarWentAway(error)) {
        const delay = reconnectDelay(attempt);
        if (attempt === 0) {
          say(
            `lost the sidecar at ${client.address} (${error?.message ?? "stream ended"}); ` +
              `joining the election ${options.name} again once it answers`,
          );
        }
        attempt += 1;
        rejoinTimer = setTimeout(() => {
          if (!finishing) campaign = join();
        }, delay);
        return;
      }
      void finish(
        error === undefined
          ? (say(`the sidecar ended the campaign for ${options.name}`), EXIT.unavailable)
          : reportFailure(error, `campaign for ${options.name} ended`, client.address),
      );
    }
  });
}
