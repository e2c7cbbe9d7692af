/**
 * Resolving `--user` / the image's USER against the image's own /etc/passwd and /etc/group,
 * following runc's/moby's `user` library (github.com/moby/sys/user GetExecUser) and moby's
 * daemon/oci_linux.go getUser.
 *
 * Accepted forms: "" (root), "name", "uid", "name:group", "uid:gid", "name:gid", "uid:group",
 * ":gid" / ":group" (user stays root). Rules, as GetExecUser:
 *   - a numeric user is always a uid; it need not exist in passwd (then gid 0, home "/");
 *     if it does exist, the first matching entry gives gid and home;
 *   - a user name must exist in passwd: otherwise "unable to find user X: no matching entries
 *     in passwd file";
 *   - the group part, when given, replaces the primary gid: numeric gids need not exist,
 *     names must ("unable to find group X: no matching entries in group file"); and then
 *     no supplementary groups are added ("only make sense in the implicit form");
 *   - without a group part, the supplementary groups are every /etc/group entry whose member
 *     list names the matched user;
 *   - ids must be within 0..2^31-1.
 *
 * Contract: pure; the caller reads the two files from the container's rootfs (undefined when
 * absent) and passes their text. The files come from an untrusted image, so parsing is
 * defensive: blank lines, `#` comments, lines with too few fields and lines whose id fields are
 * not plain decimal numbers are skipped. This is stricter than runc, whose parser turns a
 * malformed id into 0 — a broken line must never resolve to root.
 */
import { TsrunError } from '../errors.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary gids from /etc/group membership (runc's Sgids); the primary gid is not in it. */
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2 ** 31 - 1;
const DECIMAL = /^\d+$/;

function parseId(s: string): number | undefined {
  if (!DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** man 5 passwd: name:password:UID:GID:GECOS:directory:shell. Malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of lines(text)) {
    const f = line.split(':');
    if (f.length < 4 || f[0] === '') continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** man 5 group: group_name:password:GID:user_list. Malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of lines(text)) {
    const f = line.split(':');
    if (f.length < 3 || f[0] === '') continue;
    const gid = parseId(f[2]!);
    if (gid === undefined) continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    out.push({ name: f[0]!, gid, members });
  }
  return out;
}

function rangeError(what: string, value: string): TsrunError {
  return new TsrunError(
    'ERR_USAGE',
    `resolving user: ${what} ${value} is out of range: uids and gids must be in range 0-${MAX_ID}`,
  );
}

/**
 * Resolve a user spec the way `docker run -u` does. `passwd`/`group` are the image's
 * /etc/passwd and /etc/group contents, or undefined when the file does not exist.
 */
export function resolveUser(userSpec: string, passwd: string | undefined, group: string | undefined): ResolvedUser {
  // GetExecUser splits with parseLine on ':'; fields after the second are ignored.
  const parts = userSpec.split(':');
  const userArg = parts[0] ?? '';
  const groupArg = parts[1] ?? '';
  const users = passwd === undefined ? [] : parsePasswd(passwd);

  const result: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  let matchedName = '';

  const numericUser = DECIMAL.test(userArg);
  let match: PasswdEntry | undefined;
  if (userArg === '') {
    match = users.find((u) => u.uid === 0); // "default to the current state": root
  } else if (numericUser) {
    const uid = parseId(userArg);
    if (uid === undefined) throw rangeError('uid', userArg);
    match = users.find((u) => u.uid === uid);
    result.uid = uid;
  } else {
    match = users.find((u) => u.name === userArg);
    if (!match) {
      throw new TsrunError('ERR_USAGE', `unable to find user ${userArg}: no matching entries in passwd file`, {
        hint: 'the image has no such user in /etc/passwd; use a numeric uid (e.g. -u 1000) or a user the image defines',
      });
    }
  }
  if (match) {
    matchedName = match.name;
    result.uid = match.uid;
    result.gid = match.gid;
    if (match.home !== '') result.home = match.home;
  }

  if (groupArg !== '' || matchedName !== '') {
    const groups = group === undefined ? [] : parseGroup(group);
    if (groupArg !== '') {
      if (DECIMAL.test(groupArg)) {
        const gid = parseId(groupArg);
        if (gid === undefined) throw rangeError('gid', groupArg);
        result.gid = gid; // a numeric gid need not exist; if it does, it is the same number
      } else {
        const g = groups.find((e) => e.name === groupArg);
        if (!g) {
          throw new TsrunError('ERR_USAGE', `unable to find group ${groupArg}: no matching entries in group file`, {
            hint: 'the image has no such group in /etc/group; use a numeric gid (e.g. -u 1000:1000)',
          });
        }
        result.gid = g.gid;
      }
    } else {
      result.additionalGids = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid);
    }
  }
  return result;
}
