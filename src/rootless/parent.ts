/**
 * Inside the rootless namespace, tsrun runs as the child of the CLI the user started
 * (enter.ts: nsenter execs it in place, so the parent is that CLI). SIGKILL on that CLI (a CI
 * job cancelled, `kill -9`) cannot be passed on; the child notices its parent is gone (it is
 * re-parented) and can stop the way SIGTERM would stop it.
 */
export function onParentGone(fn: () => void, everyMs = 250): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    fn();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
