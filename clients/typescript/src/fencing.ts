// Fencing where the write lands (docs/design.md 3.12): stamp a lock's token
// on a Kubernetes object before writing it, or check it in the transaction of
// a PostgreSQL write. Neither helper talks to a server itself: the caller
// writes with its own Kubernetes client, in its own transaction.
import { createHash } from "node:crypto";

/** FENCE_ANNOTATION_PREFIX is the prefix of every fence annotation key; the name part follows it. */
export const FENCE_ANNOTATION_PREFIX = "fence.sync.metaparticle.io/";

/** STALE_FENCE_SQLSTATE is the SQLSTATE that sql/fencing.sql raises for a stale token. */
export const STALE_FENCE_SQLSTATE = "MSF01";

/** The longest name part of an annotation key Kubernetes accepts. */
const MAX_KEY_NAME = 63;
/** Hex digits of SHA-256 that end a shortened name part. */
const HASH_DIGITS = 16;
const LEASE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * fenceAnnotationKey is the annotation that carries the fence of lock or
 * election `name`: `fence.sync.metaparticle.io/<name>`. A name longer than
 * 63 characters is shortened to its first 46, a dash and the first 16 hex
 * digits of its SHA-256, so every name has a key and two names never share one
 * in practice.
 */
export function fenceAnnotationKey(name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 253 || !LEASE_NAME.test(name))
    throw new TypeError(`name: ${JSON.stringify(name)} is not a lock or election name (a DNS subdomain name, at most 253 characters)`);
  if (name.length <= MAX_KEY_NAME) return FENCE_ANNOTATION_PREFIX + name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, HASH_DIGITS);
  return `${FENCE_ANNOTATION_PREFIX}${name.slice(0, MAX_KEY_NAME - HASH_DIGITS - 1)}-${hash}`;
}

function tokenText(token: number | bigint | string): string {
  const text = typeof token === "string" ? token : String(token);
  if (!/^[1-9][0-9]{0,17}$/.test(text))
    throw new TypeError(`token: ${JSON.stringify(String(token))} is not a fencing token (a positive integer, at most 18 digits)`);
  return text;
}

/** The part of a Kubernetes object the stamp touches. */
export interface ObjectWithMetadata {
  metadata?: { annotations?: Record<string, string> | undefined } | undefined;
}

/**
 * stampFence sets the fence annotation of lock or election `name` on `object`
 * to `token` (the lock's token, or the leadership's term, or
 * MSYNC_FENCING_TOKEN / MSYNC_TERM as the CLI passes them) and returns the
 * object. Write the object right after: with the fencing policy installed
 * (deploy/components/fencing), the API server refuses the write if a newer
 * holder has written the object since.
 */
export function stampFence<T extends ObjectWithMetadata>(object: T, name: string, token: number | bigint | string): T {
  const key = fenceAnnotationKey(name);
  const value = tokenText(token);
  object.metadata ??= {};
  object.metadata.annotations = { ...(object.metadata.annotations ?? {}), [key]: value };
  return object;
}

/** What fence() needs of a database client: `query(text, values)`, as node-postgres' Client, PoolClient and Pool have. */
export interface SqlQueryable {
  query(text: string, values: unknown[]): Promise<unknown>;
}

/** StaleFenceError is thrown by fence() when a newer holder of the lock has already made a fenced write. */
export class StaleFenceError extends Error {
  override readonly name = "StaleFenceError";
  /** code is the SQLSTATE, STALE_FENCE_SQLSTATE. */
  readonly code = STALE_FENCE_SQLSTATE;
  constructor(
    message: string,
    /** lockName is the lock or election name the write was fenced by. */
    readonly lockName: string,
    /** staleToken is the token this write carried. */
    readonly staleToken: string,
    /** currentToken is the highest token recorded, when the server said. */
    readonly currentToken: string | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

/**
 * fence checks `token` against the highest token recorded for `name`
 * (sql/fencing.sql) and records it. Call it inside the transaction of the
 * guarded write, before the write, on the client that runs that transaction:
 * it throws StaleFenceError when a newer holder has written, and the caller
 * must then roll the transaction back.
 */
export async function fence(db: SqlQueryable, name: string, token: number | bigint | string): Promise<void> {
  if (typeof name !== "string" || name.length === 0) throw new TypeError("name: must be a non-empty lock or election name");
  const value = tokenText(token);
  try {
    await db.query("SELECT metaparticle_sync_fence($1, $2::bigint)", [name, value]);
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown; detail?: unknown };
    if (e?.code !== STALE_FENCE_SQLSTATE) throw error;
    const current = typeof e.detail === "string" ? /current_token=(\d+)/.exec(e.detail)?.[1] : undefined;
    throw new StaleFenceError(String(e.message), name, value, current, { cause: error });
  }
}
