// A separate client process that takes a lock and holds it until killed:
//   node lock-holder.js ADDRESS NAME
// It prints "acquired TOKEN" once it holds the lock.
import { SyncClient } from "metaparticle-sync-client";

const [address, name] = process.argv.slice(2);
const client = new SyncClient({ address });
const lock = await client.lock(name!, { holder: `pid-${process.pid}` });
console.log(`acquired ${lock.token}`);
setInterval(() => {}, 60_000);
