// A raw LockService.Acquire stream with every event timestamped: the
// idiomatic client hides Renewed, which the crash and scale runs need.
import type { SyncClient } from "metaparticle-sync-client";
import type { AcquireResponse } from "metaparticle-sync-client/gen/metaparticle/sync/v1/lock_service";
import { nowMs } from "./clock.js";

export class LockStream {
  /** CLOCK_MONOTONIC ms of Acquired, once it came. */
  acquiredAt: number | undefined;
  token = 0;
  /** CLOCK_MONOTONIC ms of every Renewed. */
  readonly renewals: number[] = [];
  /** CLOCK_MONOTONIC ms of every Lost. */
  readonly losses: number[] = [];
  error: Error | undefined;
  readonly acquired: Promise<number>;
  private readonly call;

  constructor(client: SyncClient, name: string, holder: string) {
    let resolve!: (at: number) => void;
    let reject!: (err: Error) => void;
    this.acquired = new Promise<number>((res, rej) => ((resolve = res), (reject = rej)));
    this.acquired.catch(() => {});
    this.call = client.locks.acquire({ fairness: 0, name, holder });
    this.call.on("data", (message: AcquireResponse) => {
      const at = nowMs();
      switch (message.event?.$case) {
        case "acquired":
          this.acquiredAt = at;
          this.token = message.event.value.fencingToken;
          resolve(at);
          return;
        case "renewed":
          this.renewals.push(at);
          return;
        case "lost":
          this.losses.push(at);
          return;
      }
    });
    this.call.on("error", (err: Error) => {
      this.error = err;
      reject(err);
    });
    this.call.on("end", () => reject(new Error(`Acquire stream of ${name} ended`)));
  }

  /** The last moment the holder heard its lease was written: Acquired or the latest Renewed before `at`. */
  lastWriteBefore(at: number): number {
    let last = this.acquiredAt ?? NaN;
    for (const r of this.renewals) if (r <= at && r > last) last = r;
    return last;
  }

  cancel(): void {
    this.call.cancel();
  }
}
