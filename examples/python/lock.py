"""A singleton job: however many copies run at once, one at a time holds the
lock and does the work. Every write carries the lock's fencing token, and the
job stops the moment the lock is lost."""

from metaparticle_sync import Client, LockTimeout

with Client() as client:  # $MSYNC_ADDRESS, else 127.0.0.1:13131; every call times out after 10 s unless told otherwise
    print("waiting for lock nightly-report (at most 60 s)", flush=True)
    try:
        lock = client.lock("nightly-report", timeout=60)
    except LockTimeout:  # a TimeoutError too
        raise SystemExit("another copy held nightly-report for 60 s; giving up") from None
    with lock:  # releases on exit, and returns once the sidecar has released
        print(f"acquired nightly-report with fencing token {lock.token}", flush=True)
        for step in range(1, 4):
            # lost.wait doubles as the pause between steps and returns early,
            # True, the moment the lock is lost.
            if lock.lost.wait(1):
                raise SystemExit(f"lost the lock, stopping: {lock.error}")
            # A real job passes the token to the store, which refuses a token
            # older than one it has already seen.
            print(f"step {step}/3 written with fencing token {lock.token}", flush=True)
        print("done; releasing nightly-report", flush=True)
