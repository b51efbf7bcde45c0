/**
 * Live process groups started by the `command` engine in this process. A `command` program runs
 * detached in its own group (so a Ctrl-C on the terminal does not reach it and so we can kill it
 * together with anything it started). The price of `detached` is that nothing kills it when we
 * die, so every group is remembered here and killed synchronously when this process exits.
 */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
    return false;
  }
}

/** Remember a group so it is killed if this process exits before the engine disposes of it. */
export function trackProcessGroup(pgid: number): void {
  liveGroups.add(pgid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous; process.kill is.
    process.on('exit', killAllProcessGroups);
  }
}

export function untrackProcessGroup(pgid: number): void {
  liveGroups.delete(pgid);
}

/**
 * SIGKILL every group this process started and has not released. The llem worker calls this from
 * its signal handlers; it also runs on process exit.
 */
export function killAllProcessGroups(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  liveGroups.clear();
}

/** Send a signal to a whole group; false when no process in it was left. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  return killGroup(pgid, signal);
}

/** Number of groups still tracked (for tests). */
export function trackedProcessGroupCount(): number {
  return liveGroups.size;
}
