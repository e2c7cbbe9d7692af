/**
 * Damaged state files: one that is not JSON (truncated, zero bytes, garbage) or not the shape its
 * reader expects is renamed aside to `<file>.corrupt-<UTC time>` and reported, so that one bad
 * file (a power cut before the kernel flushed it, a hand edit, a disk error) costs the one thing
 * it described instead of failing every later command of the store.
 *
 * Every tsrun file is written atomically (util/fs.ts `writeFileAtomic`), so a reader never sees a
 * torn file of a live writer: whatever fails to parse is damaged for good and safe to move.
 *
 * The warning goes to stderr directly ("WARNING: ..."), not through the event reporter: stores,
 * records and the network's state are opened from dozens of places that have no reporter, and a
 * damaged file must never be passed over in silence. It names the file, where it went, what was
 * lost with it and what to do. `onCorrupt` lets tests (and a future Engine API) take the reports.
 *
 * Contract: the rename is the only change made; nothing is deleted, so a file that can be repaired
 * by hand can be moved back. A file that vanished meanwhile (another process set it aside first)
 * is not reported twice.
 */
import { promises as fs, renameSync } from 'node:fs';

export interface CorruptReport {
  file: string;
  /** Where it was moved. */
  movedTo: string;
  problem: string;
  /** What tsrun forgets until it is repaired ("the image list", "container 3f2a…"). */
  lost: string;
}

type Listener = (r: CorruptReport) => void;

let listener: Listener = (r) => {
  process.stderr.write(`WARNING: ${corruptMessage(r)}\n`);
};

/** Replace where reports go; returns the previous listener. */
export function onCorrupt(l: Listener): Listener {
  const prev = listener;
  listener = l;
  return prev;
}

export function corruptMessage(r: CorruptReport): string {
  return (
    `${r.file} is damaged (${r.problem}); set aside as ${r.movedTo}, so ${r.lost} is forgotten. ` +
    `Repair it and move it back, or remove it.`
  );
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '');
}

/** Why `text` is not JSON of the right shape (`check` returns a problem or undefined), or undefined. */
export function parseChecked<T>(
  text: string,
  check: (v: unknown) => string | undefined,
): { ok: true; value: T } | { ok: false; problem: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const problem = text.trim() === '' ? 'empty' : `not JSON: ${(err as Error).message}`;
    return { ok: false, problem };
  }
  const problem = check(v);
  return problem === undefined ? { ok: true, value: v as T } : { ok: false, problem };
}

/** Rename `file` aside and report it. Returns the new path, or undefined if it was already gone. */
export async function setAside(file: string, problem: string, lost: string): Promise<string | undefined> {
  const movedTo = `${file}.corrupt-${stamp()}`;
  try {
    await fs.rename(file, movedTo);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  listener({ file, movedTo, problem, lost });
  return movedTo;
}

/** `setAside` for synchronous readers. */
export function setAsideSync(file: string, problem: string, lost: string): string | undefined {
  const movedTo = `${file}.corrupt-${stamp()}`;
  try {
    renameSync(file, movedTo);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  listener({ file, movedTo, problem, lost });
  return movedTo;
}
