// Checks of caller-supplied values. Each names the request field at fault, so
// the caller sees which one to fix; nothing is changed by a rejected request.
import { invalidArgument } from "./errors.js";

export const MIN_LEASE_MS = 1_000;
export const MAX_LEASE_MS = 3_600_000;
export const MAX_WAIT_MS = 24 * 3_600_000;
/** Largest proclaimed election value, in UTF-8 bytes. Stored in a Lease annotation. */
export const MAX_VALUE_BYTES = 4096;
export const MAX_HOLDER_LENGTH = 253;
/** Kubernetes object names (DNS-1123 subdomains) are at most this long. */
export const MAX_LEASE_NAME_LENGTH = 253;

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks a lock or election name and returns the Lease name it maps to. */
export function checkName(name: string, prefix: string, field: string): string {
  if (name === "") throw invalidArgument(field, "must not be empty");
  const leaseName = prefix + name;
  if (leaseName.length > MAX_LEASE_NAME_LENGTH) {
    throw invalidArgument(
      field,
      `is ${name.length} characters; with the Lease name prefix "${prefix}" it must fit in ${MAX_LEASE_NAME_LENGTH}, so at most ${MAX_LEASE_NAME_LENGTH - prefix.length}`,
    );
  }
  if (!dns1123Subdomain.test(name) || !dns1123Subdomain.test(leaseName)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(truncate(name))} is not a DNS-1123 subdomain: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`,
    );
  }
  return leaseName;
}

/** Checks a holder or candidate name: 1 to 253 printable characters. */
export function checkHolder(holder: string, field: string): string {
  if (holder === "") throw invalidArgument(field, "must not be empty");
  if ([...holder].length > MAX_HOLDER_LENGTH) throw invalidArgument(field, `must be at most ${MAX_HOLDER_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(holder)) throw invalidArgument(field, "must not contain control characters");
  return holder;
}

/** Checks a lease duration: whole seconds within bounds, because Leases store whole seconds. */
export function checkLeaseMs(ms: number, field: string): number {
  if (!Number.isFinite(ms) || ms < MIN_LEASE_MS || ms > MAX_LEASE_MS) {
    throw invalidArgument(field, `must be between ${MIN_LEASE_MS / 1000} s and ${MAX_LEASE_MS / 1000} s, got ${formatMs(ms)}`);
  }
  if (ms % 1000 !== 0) throw invalidArgument(field, `must be a whole number of seconds (Leases store whole seconds), got ${formatMs(ms)}`);
  return ms;
}

export function checkWaitMs(ms: number, field: string): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_WAIT_MS) {
    throw invalidArgument(field, `must be between 0 and ${MAX_WAIT_MS / 3_600_000} h, got ${formatMs(ms)}`);
  }
  return ms;
}

export function checkValue(value: string, field: string): string {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_VALUE_BYTES) throw invalidArgument(field, `is ${bytes} bytes; at most ${MAX_VALUE_BYTES} are allowed`);
  return value;
}

/** Fencing tokens and terms are positive: the first acquisition gets 1. */
export function checkToken(token: number, field: string): number {
  if (!Number.isSafeInteger(token) || token < 1)
    throw invalidArgument(field, `must be a token from an acquisition (1 or more), got ${token}`);
  return token;
}

function formatMs(ms: number): string {
  return Number.isFinite(ms) ? `${ms / 1000} s` : String(ms);
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
