"""The Python contender of the cross-language test (see ../crosslang.test.ts):
prints "ready", waits for a line on stdin, then takes the lock ROUNDS times
and prints one JSON line per hold with its fencing token and the hold's start
and end on CLOCK_MONOTONIC (time.monotonic_ns), which every process on the
machine shares.

    python contender.py ADDRESS LOCK ROUNDS
"""

import json
import sys
import time

from metaparticle_sync import Client


def main(address: str, name: str, rounds: int) -> None:
    with Client(address) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(rounds):
            with client.lock(name, holder="python") as lock:
                start = time.monotonic_ns()
                time.sleep(0.002)
                end = time.monotonic_ns()
                if lock.error is not None:
                    raise SystemExit(f"token {lock.token} was lost while held: {lock.error}")
            print(json.dumps({"client": "python", "token": lock.token, "start": str(start), "end": str(end)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
