// metaparticle-sync-client: distributed locks with fencing tokens, counting
// semaphores, read-write locks and leader election, through the
// metaparticle-sync sidecar on loopback.
export { SyncClient, DEFAULT_ADDRESS, type SyncClientOptions, type LockInfo, type ReadOptions, type TryLockOptions } from "./client.js";
export { Lock, LeasedLock, type LockOptions } from "./lock.js";
export { Hold, StreamHold, LeaseHold, type AcquireOptions, type LeaseOptions, type RenewOptions } from "./hold.js";
export {
  RWLock,
  RWLockHold,
  LeasedRWLockHold,
  type RWLockMode,
  type RWLockAttempt,
  type RWLockInfo,
  type ReaderSeatInfo,
} from "./rwlock.js";
export { Semaphore, Permit, LeasedPermit, type PermitAttempt, type PermitHolderInfo, type SemaphoreInfo } from "./semaphore.js";
export {
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_WAIT_TIMEOUT_MS,
  WAIT_TIMEOUT_GRACE_MS,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  type CallOptions,
} from "./deadlines.js";
export { Campaign, type CampaignEvent, type CampaignOptions, type Leader, type Leadership } from "./election.js";
export { SyncClientError, LostError } from "./internal.js";
export { status } from "@grpc/grpc-js";
export {
  decodeStatusDetails,
  encodeStatusDetails,
  ERROR_DOMAIN,
  STATUS_DETAILS_KEY,
  type ErrorInfo,
  type ErrorReason,
  type FieldViolation,
  type StatusDetails,
  type StatusDetailsInput,
} from "./status-details.js";
export {
  FENCE_ANNOTATION_PREFIX,
  STALE_FENCE_SQLSTATE,
  StaleFenceError,
  fence,
  fenceAnnotationKey,
  stampFence,
  type ObjectWithMetadata,
  type SqlQueryable,
} from "./fencing.js";
