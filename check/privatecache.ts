// The private cache: one folder per user, $XDG_CACHE_HOME/cellforge (or ~/.cache/cellforge), for
// what is slow to redo (a kernel's typecheck verdict). Only its owner may use it: it is created with
// mode 0700 and checked at every open (a real folder, not a link, owned by this user, mode 0700),
// else refused with a message that says how to fix it. An entry is written to a fresh temporary name
// opened with O_EXCL|O_NOFOLLOW, synced and renamed into place, and read with O_NOFOLLOW: a link
// planted in the folder is never followed. Opening the folder drops entries unused for 7 days and
// the oldest beyond 500.
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, futimesSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";

/** The cache folder cannot be made or is not private: the message says what to do. */
export class CacheError extends Error {}

export const CACHE_MAX_AGE_DAYS = 7;
export const CACHE_MAX_ENTRIES = 500;
/** Temporary files of writes that died half-way are dropped after an hour. */
const TMP_MAX_AGE_MS = 3600_000;
/** An entry's name: no slash, no leading dot (those are the temporary files), no "..". */
const ENTRY = /^[\w-]+(\.[\w-]+)*$/;

// O_NOFOLLOW and O_DIRECTORY are POSIX; where they do not exist (Windows) the checks by owner and mode do not either.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0, DIRECTORY = constants.O_DIRECTORY ?? 0, NONBLOCK = constants.O_NONBLOCK ?? 0;
const uid = process.getuid?.();

/** $XDG_CACHE_HOME/cellforge, or ~/.cache/cellforge (a relative XDG_CACHE_HOME is ignored, as the XDG spec says). */
export function privateCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "cellforge");
}

export interface PrivateCache {
  readonly dir: string;
  /** An entry's text; undefined when it is absent, or is not a regular file of this user (a link is not followed). Reading keeps it fresh. */
  get(name: string): string | undefined;
  /** Write an entry atomically (a reader sees the old text or the new, never a part). */
  put(name: string, text: string): void;
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);

/** Open (creating it if need be) and check the private cache folder, and drop stale entries. */
export function openPrivateCache(dir = privateCacheDir(), opts: { maxAgeDays?: number; maxEntries?: number } = {}): PrivateCache {
  securedFolder(dir);
  clean(dir, (opts.maxAgeDays ?? CACHE_MAX_AGE_DAYS) * 86400_000, opts.maxEntries ?? CACHE_MAX_ENTRIES);
  const entry = (name: string) => {
    if (!ENTRY.test(name)) throw new Error(`internal: "${name}" is not a cache entry's name`);
    return join(dir, name);
  };
  return {
    dir,
    get(name) {
      const file = entry(name);
      let fd: number;
      try {
        fd = openSync(file, constants.O_RDONLY | NOFOLLOW | NONBLOCK);
      } catch {
        return undefined; // absent, or a link (ELOOP)
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile() || (uid !== undefined && st.uid !== uid)) return undefined;
        const text = readFileSync(fd, "utf8");
        futimesSync(fd, st.atime, new Date());
        return text;
      } finally {
        closeSync(fd);
      }
    },
    put(name, text) {
      const final = entry(name);
      const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
      let fd: number;
      try {
        fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, 0o600);
      } catch (e) {
        throw new CacheError(`cannot write to the cache folder ${dir} (${code(e)})`);
      }
      try {
        writeSync(fd, text);
        fsyncSync(fd);
        closeSync(fd);
        renameSync(tmp, final); // replaces a link at `final` itself, never its target
      } catch (e) {
        try { closeSync(fd); } catch { /* closed already */ }
        try { unlinkSync(tmp); } catch { /* gone already */ }
        throw new CacheError(`cannot write to the cache folder ${dir} (${code(e)})`);
      }
    },
  };
}

/** Make the folder if it is missing (mode 0700); refuse one that is a link, not a folder, someone else's, or open to others. */
function securedFolder(dir: string): void {
  const fix = `remove it, or set XDG_CACHE_HOME to a folder of your own`;
  let created = false;
  try {
    mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
    mkdirSync(dir, { mode: 0o700 });
    created = true;
  } catch (e) {
    if (code(e) !== "EEXIST") throw new CacheError(`cannot create the cellforge cache folder ${dir} (${code(e)}): set XDG_CACHE_HOME to a folder you can write`);
  }
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | DIRECTORY | NOFOLLOW);
  } catch (e) {
    // what it is, for the message (opening a link with O_NOFOLLOW|O_DIRECTORY fails with ELOOP or ENOTDIR)
    let st;
    try { st = lstatSync(dir); } catch { /* gone since */ }
    const what = st?.isSymbolicLink() ? "a symbolic link" : st && !st.isDirectory() ? "not a folder" : `not readable (${code(e)})`;
    throw new CacheError(`the cellforge cache folder ${dir} is ${what}: ${fix}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isDirectory()) throw new CacheError(`the cellforge cache folder ${dir} is not a folder: ${fix}`);
    if (uid === undefined) return;
    if (st.uid !== uid) throw new CacheError(`the cellforge cache folder ${dir} belongs to user ${st.uid}, not to you (${uid}): ${fix}`);
    const mode = st.mode & 0o777;
    if (mode !== 0o700) {
      if (created) fchmodSync(fd, 0o700); // the umask took bits away or added none: set exactly 0700
      else throw new CacheError(`the cellforge cache folder ${dir} has mode 0${mode.toString(8)}, so others may read or write it: it must be 0700 (chmod 700 ${dir})`);
    }
  } finally {
    closeSync(fd);
  }
}

/** Drop entries older than `maxAgeMs` (by their last use), left-over temporary files, and the oldest beyond `maxEntries`. */
function clean(dir: string, maxAgeMs: number, maxEntries: number): void {
  const now = Date.now();
  const kept: { name: string; t: number }[] = [];
  const drop = (name: string) => {
    try { unlinkSync(join(dir, name)); } catch { /* gone, or a folder: left alone */ }
  };
  for (const name of readdirSync(dir)) {
    let t: number;
    try {
      t = lstatSync(join(dir, name)).mtimeMs;
    } catch {
      continue;
    }
    const tmp = name.startsWith(".") && name.endsWith(".tmp");
    if (now - t > (tmp ? Math.min(maxAgeMs, TMP_MAX_AGE_MS) : maxAgeMs)) drop(name);
    else if (!tmp) kept.push({ name, t });
  }
  kept.sort((a, b) => b.t - a.t);
  for (const e of kept.slice(maxEntries)) drop(e.name);
}
