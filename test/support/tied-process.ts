// Child processes that die with the test process that started them, even
// when that process is killed outright: where util-linux `setpriv` exists the
// command runs under it with PR_SET_PDEATHSIG=SIGKILL. setpriv execs the
// command, so the child's pid is the command's own.
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

let setprivPath: string | null | undefined;

function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/bin"])) {
    try {
      accessSync(join(dir, "setpriv"), constants.X_OK);
      setprivPath = join(dir, "setpriv");
      break;
    } catch {
      // not in this directory
    }
  }
  return setprivPath;
}

/** The command and arguments to spawn so that `command` is killed when this process dies. */
export function tiedCommand(command: string, args: readonly string[]): [string, string[]] {
  const setpriv = findSetpriv();
  return setpriv === null ? [command, [...args]] : [setpriv, ["--pdeathsig", "SIGKILL", "--", command, ...args]];
}
