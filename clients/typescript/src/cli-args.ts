// The command line of `metaparticle-sync`: its commands, flags, help texts and
// exit codes, and the parser that turns argv into one validated invocation.
import { parseArgs as parseCommandLine } from "node:util";
import { DEFAULT_ADDRESS } from "./client.js";
import { DURATION_SYNTAX, parseDuration } from "./duration.js";

export { formatDuration } from "./duration.js";

/**
 * Exit codes, chosen from sysexits.h and the shell's conventions so that they
 * rarely collide with a command's own. Like `flock` and `consul lock`, `lock`
 * and `elect` otherwise exit with CMD's own status, which can be any of these.
 */
export const EXIT = {
  /** Bad command line, or the sidecar rejected a flag's value (INVALID_ARGUMENT, or PERMITS_MISMATCH for `lock -n`). EX_USAGE. */
  usage: 64,
  /** The sidecar could not be reached, refused the call, or ended the stream. EX_UNAVAILABLE. */
  unavailable: 69,
  /** A bug in this program. EX_SOFTWARE. */
  software: 70,
  /** `lock`: --wait-timeout passed before the lock (or, with -n, a permit; with --shared or --exclusive, a hold of that mode) was free. EX_TEMPFAIL: try again later. */
  waitTimeout: 75,
  /** `lock`: the lock (or permit, or read-write hold) was lost while CMD ran; CMD was stopped (SIGTERM, then SIGKILL after --kill-after). */
  lockLost: 76,
  /** CMD exists but could not be executed. */
  cannotExecute: 126,
  /** CMD was not found. */
  notFound: 127,
  /** CMD died of signal N, or this program was interrupted by signal N before CMD started: 128 + N. */
  signalBase: 128,
} as const;

export type CommandName = "lock" | "elect" | "leader" | "observe";

interface FlagSpec {
  /** Placeholder of the value, or undefined for a switch. */
  readonly value?: string;
  /** The one-letter form, e.g. "n" for -n. */
  readonly short?: string;
  readonly help: string;
}

const COMMON: Record<string, FlagSpec> = {
  address: { value: "HOST:PORT", help: `sidecar address (default: $MSYNC_ADDRESS, else ${DEFAULT_ADDRESS})` },
  help: { short: "h", help: "show this help" },
};

const RUNNING: Record<string, FlagSpec> = {
  "lease-duration": { value: "DUR", help: "lease duration, whole seconds (default: the sidecar's, 15s)" },
  "kill-after": {
    value: "DUR",
    help:
      "how long CMD has between SIGTERM and SIGKILL when it must stop; counted back from the end of the sidecar's " +
      "promise, so it must fit in 35% of it (default 3s, lowered to fit; a larger value is refused)",
  },
  verbose: { help: "report on stderr when the lock or leadership is taken and given back" },
};

const FLAGS: Record<CommandName, Record<string, FlagSpec>> = {
  lock: {
    permits: {
      value: "N",
      short: "n",
      help:
        "hold one of N permits of semaphore NAME instead of lock NAME, so that up to N commands run at once; " +
        "every caller of NAME must give the same N (1 to 32)",
    },
    shared: {
      help:
        "take a shared (read) hold of read-write lock NAME instead of lock NAME: commands with --shared run at once, " +
        "none beside one with --exclusive; CMD gets MSYNC_LOCK_MODE=shared",
    },
    exclusive: {
      help:
        "take an exclusive (write) hold of read-write lock NAME instead of lock NAME: alone, no --shared or other " +
        "--exclusive command beside it; CMD gets MSYNC_LOCK_MODE=exclusive",
    },
    "non-fair": {
      help:
        "when a command holding lock NAME through this sidecar ends, this one may be handed the lock next, ahead of " +
        "other sidecars' waiters (up to 16 in a row): more handoffs per second, at the cost of order; a plain lock only",
    },
    "wait-timeout": {
      value: "DUR",
      help:
        "give up waiting for the lock (or permit, or read-write hold) after DUR and exit 75, also when the sidecar does not answer (1s later); " +
        "0 fails at once if it is held (default 5m, at most 24h)",
    },
    holder: { value: "NAME", help: "holder name others see (default: $MSYNC_HOLDER, else host/pid)" },
    ...RUNNING,
    ...COMMON,
  },
  elect: {
    candidate: { value: "NAME", help: "candidate name others see as the leader (default: $MSYNC_CANDIDATE, $POD_NAME, else host/pid)" },
    value: { value: "VALUE", help: "value proclaimed while leading, for example this instance's address" },
    ...RUNNING,
    ...COMMON,
  },
  leader: {
    json: { help: "print one JSON object: {name, leader, value, term}" },
    fresh: { help: "read from the API server instead of the sidecar's cache" },
    timeout: { value: "DUR", help: "give up and exit 69 if the sidecar has not answered within DUR (default 10s)" },
    ...COMMON,
  },
  observe: {
    json: { help: "print one JSON object per line: {name, leader, value, term}" },
    ...COMMON,
  },
};

const SUMMARY: Record<CommandName, { usage: string; text: string }> = {
  lock: {
    usage: "lock [-n N | --shared | --exclusive] NAME [flags] -- CMD [ARGS...]",
    text: `Waits for lock NAME, runs CMD while holding it, then releases it, and exits with CMD's status.
CMD gets MSYNC_LOCK_NAME and MSYNC_FENCING_TOKEN (strictly greater than every earlier token of
NAME: pass it to what CMD writes to, so stale writers can be rejected). If the lock is lost while
CMD runs, CMD gets SIGTERM, then SIGKILL after --kill-after, and this program exits 76.
With -n N, NAME is a counting semaphore of N permits (not the lock NAME): up to N commands run at
once, and each holds one permit while it runs, the way a lock is held here. CMD also gets
MSYNC_PERMITS=N; its MSYNC_FENCING_TOKEN is strictly greater than every earlier token of the
semaphore. Every caller of NAME must give the same N: another N exits 64 without running CMD.
With --shared or --exclusive, NAME is a read-write lock: commands holding it --shared run at
once, one holding it --exclusive runs alone, and a --shared command that asks while an
--exclusive one waits queues behind it. The read-write lock NAME is not the lock NAME of a
plain lock, nor the semaphore NAME of -n: holders of a plain lock NAME and --shared or
--exclusive holders of NAME do not exclude each other. CMD also gets MSYNC_LOCK_MODE (shared or
exclusive). Its MSYNC_FENCING_TOKEN is, with --exclusive, strictly greater than every earlier
exclusive token of NAME; with --shared, the token of the last exclusive hold before it (0 if
none), which other --shared commands may have too. Only one of -n, --shared and --exclusive may
be given (else exit 64).
Waiters are served first come, first served across sidecars. With --non-fair, when a command
holding lock NAME through this sidecar ends, the sidecar may hand the lock to this one next,
ahead of waiters of other sidecars, up to 16 grants in a row; it is for a plain lock only (with
-n, --shared or --exclusive, exit 64).
CMD is dead before anyone else can take the lock: with each heartbeat the sidecar promises how
long the holder may still act (10s at a time at the default 15s lease), and when no heartbeat
has renewed that promise by the time --kill-after + 250ms of it is left (a frozen or vanished
sidecar), SIGTERM goes out, and SIGKILL 250ms before the promise ends. So --kill-after must fit
in 35% of the promise (the rest is for heartbeats): at most 3.25s at the default lease, about
0.9s with --lease-duration=5s. The default 3s is lowered to fit; a larger --kill-after is
refused (exit 64) before CMD starts. A loss the sidecar reports (the lease was taken or
deleted) stops CMD at once, the same way. SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to
CMD (on a terminal, Ctrl-C already reaches CMD and is not sent twice); the lock is released,
and the sidecar's acknowledgement awaited, once CMD has exited.`,
  },
  elect: {
    usage: "elect NAME [flags] -- CMD [ARGS...]",
    text: `Campaigns in election NAME and runs CMD only while this candidate leads: CMD starts when it
is elected, with MSYNC_ELECTION_NAME, MSYNC_CANDIDATE and MSYNC_TERM (strictly greater than every
earlier term: usable as a fencing token), and is stopped (SIGTERM, then SIGKILL after --kill-after)
when it is deposed, or, counted back from the end of the leadership's promise as for lock, when
no heartbeat renews it (then it also leaves the election and joins it again as a new candidate);
the candidate stays in the election and starts CMD again when re-elected. A sidecar that stops
answering or goes away after it answered once is reported on stderr and joined again once it
answers.
When CMD exits by itself, this program resigns, so another candidate leads at once, and exits
with CMD's status. Signals are passed on to CMD as for lock.`,
  },
  leader: {
    usage: "leader NAME [--json] [--fresh] [--timeout=DUR]",
    text: `Prints the current leader of election NAME, its term and proclaimed value:
  LEADER term=TERM value=VALUE       or, when nobody leads:   (none) term=LAST-TERM value=
Gives up after --timeout (10s) if the sidecar does not answer.`,
  },
  observe: {
    usage: "observe NAME [--json]",
    text: `Prints the leader of election NAME at once, then one line per change of leader, term or
value (same format as leader), until interrupted (exit 0). Once connected, a sidecar that goes
away or stops answering (frozen: noticed within about 15s by gRPC keepalive) is reported on
stderr and observed again once it answers, which is also reported; observe does not exit for
it. It exits 69 if the sidecar cannot be reached at start, refuses the call, or ends the stream.`,
  },
};

/** Each exit code, what it means, and the commands that can exit with it. */
const EXIT_CODES: ReadonlyArray<{ readonly code: string; readonly text: string; readonly commands: readonly CommandName[] }> = [
  { code: "0", text: "printed the leader", commands: ["leader"] },
  { code: "0", text: "interrupted (SIGINT, SIGTERM)", commands: ["observe"] },
  { code: "CMD's status", text: "CMD's own exit status (128+N if it died of signal N)", commands: ["lock", "elect"] },
  { code: "64", text: "bad usage, or the sidecar rejected a value (INVALID_ARGUMENT)", commands: ["lock", "elect", "leader", "observe"] },
  { code: "64", text: "-n N differs from the N the semaphore has (PERMITS_MISMATCH); CMD was not started", commands: ["lock"] },
  { code: "64", text: "more than one of -n, --shared and --exclusive, or --non-fair with one; CMD was not started", commands: ["lock"] },
  { code: "64", text: "--kill-after does not fit the lease's promise; CMD was not started", commands: ["lock", "elect"] },
  { code: "69", text: "the sidecar could not be reached, refused the call or ended the stream", commands: ["lock"] },
  { code: "69", text: "the sidecar could not be reached, refused the call, or did not answer within --timeout", commands: ["leader"] },
  {
    code: "69",
    text: "the sidecar could not be reached at start, or refused the call (once connected, a restarting sidecar is waited for)",
    commands: ["elect", "observe"],
  },
  {
    code: "75",
    text: "--wait-timeout passed while the lock (or every permit, or the read-write lock) was held by others",
    commands: ["lock"],
  },
  { code: "76", text: "the lock (or permit, or read-write hold) was lost while CMD ran; CMD was stopped", commands: ["lock"] },
  { code: "126, 127", text: "CMD could not be executed, or was not found", commands: ["lock", "elect"] },
  { code: "128+N", text: "interrupted by signal N before CMD started", commands: ["lock", "elect"] },
  { code: "70", text: "a bug in metaparticle-sync", commands: ["lock", "elect", "leader", "observe"] },
];

/** The exit codes of `command`, or of every command (each line then says which commands it applies to). */
function exitCodesHelp(command?: CommandName): string {
  const lines = EXIT_CODES.filter((e) => command === undefined || e.commands.includes(command)).map((e) => {
    const applies = command === undefined && e.commands.length < 4 ? `${e.commands.join(", ")}: ` : "";
    return `  ${e.code.padEnd(16)}${applies}${e.text}`;
  });
  return `Exit codes:\n${lines.join("\n")}`;
}

const DURATION_HELP = `DUR is ${DURATION_SYNTAX}.`;

export function mainHelp(): string {
  const commands = (Object.keys(SUMMARY) as CommandName[]).map((c) => `  metaparticle-sync ${SUMMARY[c].usage}`);
  return `metaparticle-sync: distributed locks, read-write locks, semaphores and leader election for shell scripts
and jobs, through the metaparticle-sync sidecar.

Usage:
${commands.join("\n")}
  metaparticle-sync COMMAND --help

Every command takes --address=HOST:PORT (default: $MSYNC_ADDRESS, else ${DEFAULT_ADDRESS}).

${exitCodesHelp()}
`;
}

export function commandHelp(command: CommandName): string {
  const flags = Object.entries(FLAGS[command]).map(([name, spec]) => {
    const short = spec.short === undefined || name === "help" ? "" : `-${spec.short} ${spec.value ?? ""}, `;
    const left = `  ${short}--${name}${spec.value === undefined ? "" : `=${spec.value}`}`;
    return `${left.padEnd(26)}${spec.help}`;
  });
  const durations = command === "observe" ? "" : `\n${DURATION_HELP}\n`;
  return `Usage: metaparticle-sync ${SUMMARY[command].usage}

${SUMMARY[command].text}

Flags:
${flags.join("\n")}
${durations}
${exitCodesHelp(command)}
`;
}

/** A command line that cannot be run; the message says why. Exits 64. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export type Invocation =
  /** `usage` is set when no command was given: the help goes to stderr and the exit status is 64. */
  | { readonly kind: "help"; readonly text: string; readonly usage?: boolean }
  | { readonly kind: "version" }
  | {
      readonly kind: "run";
      readonly command: CommandName;
      readonly name: string;
      /** Flag values by name; switches are "true". */
      readonly flags: ReadonlyMap<string, string>;
      /** CMD and its arguments, for lock and elect. */
      readonly argv: readonly string[];
    };

/**
 * Parses `COMMAND NAME [flags] [--] CMD [ARGS...]` with Node's parser. Flags
 * may come before or after NAME; CMD starts at `--` or at the first argument
 * after NAME that is not a flag, so CMD's own flags are never read as ours.
 */
export function parseArgs(args: readonly string[]): Invocation {
  const [first, ...rest] = args;
  if (first === undefined) return { kind: "help", text: mainHelp(), usage: true };
  if (first === "--help" || first === "-h" || first === "help") {
    const topic = first === "help" ? rest[0] : undefined;
    if (topic !== undefined && isCommand(topic)) return { kind: "help", text: commandHelp(topic) };
    return { kind: "help", text: mainHelp() };
  }
  if (first === "--version") return { kind: "version" };
  if (!isCommand(first)) throw new UsageError(`unknown command ${JSON.stringify(first)}; commands: lock, elect, leader, observe`);
  const command = first;
  const specs = FLAGS[command];
  const options = Object.fromEntries(
    Object.entries(specs).map(([flag, spec]) => [
      flag,
      {
        type: spec.value === undefined ? ("boolean" as const) : ("string" as const),
        ...(spec.short === undefined ? {} : { short: spec.short }),
      },
    ]),
  );
  // Where our arguments end and CMD begins: at "--", or at the first argument after NAME that is not a flag.
  // Found without strictness, so that nothing from CMD on is read as ours.
  const { tokens } = parseCommandLine({ args: rest, options, strict: false, allowPositionals: true, tokens: true });
  let ours = rest.length;
  let argv: string[] = [];
  let positionals = 0;
  for (const token of tokens) {
    if (token.kind === "option-terminator") {
      ours = token.index;
      argv = rest.slice(token.index + 1);
      break;
    }
    if (token.kind === "positional" && ++positionals === 2) {
      ours = token.index;
      argv = rest.slice(token.index);
      break;
    }
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseCommandLine({ args: rest.slice(0, ours), options, strict: true, allowPositionals: true });
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    // Node names a flag that has a short form as "-n, --permits <value>": say it as it was written.
    const named = /'(-[^' ,]*)(?:, (--[^' ]*))?/.exec(message);
    const flag = named?.[2] !== undefined && rest.some((arg) => arg.startsWith(named[2]!)) ? named[2] : (named?.[1] ?? "");
    const word = flag.replace(/^--?/, "");
    const spec = specs[word] ?? Object.values(specs).find((s) => s.short === word);
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION")
      throw new UsageError(`unknown flag ${flag} for ${command}; see metaparticle-sync ${command} --help`, command);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      if (spec?.value === undefined) throw new UsageError(`${flag} takes no value`, command);
      throw new UsageError(`${flag} needs a value (${flag.startsWith("--") ? `${flag}=` : `${flag} `}${spec.value})`, command);
    }
    throw err;
  }
  const flags = new Map<string, string>();
  for (const [flag, value] of Object.entries(parsed.values)) if (value !== undefined && value !== false) flags.set(flag, String(value));
  const name = parsed.positionals[0];
  if (flags.has("help")) return { kind: "help", text: commandHelp(command) };
  if (name === undefined || name === "")
    throw new UsageError(`${command} needs a NAME: metaparticle-sync ${SUMMARY[command].usage}`, command);
  const runsCommand = command === "lock" || command === "elect";
  if (runsCommand && argv.length === 0)
    throw new UsageError(`${command} needs a command to run: metaparticle-sync ${SUMMARY[command].usage}`, command);
  if (!runsCommand && argv.length > 0)
    throw new UsageError(`${command} takes only NAME, got also ${JSON.stringify(argv.join(" "))}`, command);
  for (const [flag, value] of flags) {
    if (specs[flag]?.value === "DUR") parseDurationFlag(value, `--${flag}`); // report a bad duration before connecting
  }
  if (flags.has("permits")) parsePermitsFlag(flags.get("permits")!);
  const kinds = ["permits", "shared", "exclusive"].filter((flag) => flags.has(flag));
  if (kinds.length > 1)
    throw new UsageError(
      `lock takes only one of -n (--permits), --shared and --exclusive, got ${kinds.map((k) => `--${k}`).join(" and ")}: ` +
        "a semaphore, a read-write lock and a lock of one NAME are three different things",
      command,
    );
  if (kinds.length > 0 && flags.has("non-fair"))
    throw new UsageError(
      `--non-fair is for a plain lock, not with --${kinds[0]}: semaphores and read-write locks are served in order`,
      command,
    );
  return { kind: "run", command, name, flags, argv };
}

function isCommand(word: string): word is CommandName {
  return Object.hasOwn(FLAGS, word);
}

/**
 * Parses -n (--permits): a whole number. Whether it is in range (1 to 32) is
 * the sidecar's to say, which answers INVALID_ARGUMENT naming `permits`.
 */
export function parsePermitsFlag(text: string): number {
  if (!/^[0-9]{1,9}$/.test(text))
    throw new UsageError(`-n (--permits): ${JSON.stringify(text)} is not a number of permits, such as 3`, "lock");
  return Number(text);
}

/** Parses a duration flag into ms (the syntax of duration.ts, shared with the daemon); a bad one is a usage error. */
export function parseDurationFlag(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a duration; use ${DURATION_SYNTAX}`);
  return ms;
}
