import fsp from "node:fs/promises";
import path from "node:path";

/**
 * The usage journal's ownership of its directory: one live journal per directory, a lock file between processes and
 * a registry within one (usage-buffer.ts).
 */

const LOCK = "journal.lock";

/**
 * Journal directories held by journals of this process. The lock file names a pid, and a lock holding this process's
 * own pid is stale (a restarted container is pid 1 again), so a second journal of the same process would otherwise
 * take a directory that a live one writes: its replay would deliver and delete the other's active segment while that
 * one still appends to it, and those records would be lost.
 */
const heldDirs = new Set<string>();

/** Takes the directory's lock file; a lock whose process is gone (or is this pid, restarted) is stale. */
export async function lock(dir: string): Promise<string> {
  const file = path.join(dir, LOCK);
  if (heldDirs.has(file)) {
    throw new Error(`${dir} is the usage journal of another journal of this process: give each its own directory`);
  }
  heldDirs.add(file);
  try {
    return await takeLock(dir, file);
  } catch (err) {
    heldDirs.delete(file);
    throw err;
  }
}

export async function unlock(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  heldDirs.delete(file);
}

async function takeLock(dir: string, file: string): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, String(process.pid), { flag: "wx" });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const pid = Number(await fsp.readFile(file, "utf8").catch(() => ""));
    if (otherProcessAlive(pid)) {
      throw new Error(`${dir} is the usage journal of the running process ${pid}: give each process its own directory`);
    }
    await fsp.rm(file, { force: true });
  }
  throw new Error(`cannot lock the usage journal ${dir}`);
}

/** Whether `pid` is a running process other than this one (this pid in a file is a restarted container's). */
export function otherProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    return process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
