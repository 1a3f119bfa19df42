// `metaparticle-sync elect NAME -- CMD`: runs CMD only while this candidate
// leads, and resigns when CMD exits by itself.
import { EXIT, formatDuration } from "./cli-args.js";
import { CALL_DEADLINE_MS, reconnectDelay, reportFailure, say, sidecarWentAway, withDeadline } from "./cli-calls.js";
import { Child, signalExitCode, trapSignals } from "./cli-child.js";
import type { SyncClient } from "./client.js";
import type { Campaign, Leadership } from "./election.js";
import { LostError, SyncClientError } from "./internal.js";

export interface ElectCommand {
  readonly name: string;
  readonly argv: readonly string[];
  readonly candidate?: string;
  readonly value?: string;
  readonly leaseDuration?: number;
  readonly killAfter: number;
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
        await withDeadline(campaign.resign(), CALL_DEADLINE_MS, "Resign").catch((err: unknown) =>
          say(`could not resign ${options.name}, leaving the campaign instead: ${SyncClientError.from(err).message}`),
        );
      }
      campaign.close();
      resolve(code);
    };

    const lead = async (leadership: Leadership) => {
      if (current !== undefined) await current.child.exited; // the last term's CMD is still stopping
      if (leadership.signal.aborted || finishing || interrupted !== undefined) return;
      if (options.verbose) say(`elected leader of ${options.name} (term ${leadership.term}); running ${options.argv.join(" ")}`);
      const term: Term = {
        child: new Child(options.argv, {
          MSYNC_ELECTION_NAME: options.name,
          MSYNC_CANDIDATE: campaign.candidate,
          MSYNC_TERM: String(leadership.term),
          MSYNC_ADDRESS: client.address,
        }),
        term: leadership.term,
        deposed: false,
      };
      current = term;
      const onDeposed = () => {
        if (finishing) return;
        term.deposed = true;
        const reason =
          leadership.signal.reason instanceof LostError ? `${leadership.signal.reason.reason}: ${leadership.signal.reason.message}` : "";
        say(
          `no longer leader of ${options.name} (term ${term.term}): ${reason}; ` +
            `stopping the command (SIGTERM, SIGKILL after ${formatDuration(options.killAfter)})`,
        );
        term.child.stop(options.killAfter);
      };
      leadership.signal.addEventListener("abort", onDeposed, { once: true });
      const code = await term.child.exited;
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
          void lead(leadership);
        },
        onLeaderChanged: answered,
        onDeposed: (_term, reason) => {
          if (reason !== "heartbeat-timeout" || joined !== campaign || finishing) return;
          if (options.verbose) say(`leaving the campaign for ${options.name} and joining it again`);
          campaign = join();
          joined.close();
        },
      });
      joined.done.then(
        () => ended(joined, undefined),
        (err: unknown) => ended(joined, SyncClientError.from(err)),
      );
      return joined;
    };
    function answered(): void {
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
