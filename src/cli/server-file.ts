import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/**
 * A running `tollgate serve` holds its data folder through `server.json`: PGlite lets one process
 * open the folder, so other commands go through that server, and a second server is refused. The
 * file is claimed (pid only) before the database opens and gets its URL once the port listens.
 */
const ServerFile = z.object({ url: z.string().optional(), pid: z.number().int() });
export type ServerFile = z.infer<typeof ServerFile>;

const pathOf = (dataDir: string) => join(dataDir, "server.json");

function writeAside(dataDir: string, info: ServerFile): string {
  const partial = `${pathOf(dataDir)}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(info), { mode: 0o600 });
  return partial;
}

/** Written aside and renamed into place, so a reader never sees half a file. */
export function writeServerFile(dataDir: string, info: ServerFile): void {
  renameSync(writeAside(dataDir, info), pathOf(dataDir));
}

/**
 * Makes this process the folder's server, unless a live one holds it: then that one is answered.
 * The file is linked into place, which fails if it exists, so of two servers starting together
 * one wins; a file left by a process that died is taken over.
 */
export function claimServerFile(dataDir: string, pid: number): { ok: true } | { ok: false; holder: ServerFile } {
  const partial = writeAside(dataDir, { pid });
  try {
    linkSync(partial, pathOf(dataDir));
    return { ok: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = readServerFile(dataDir);
    if (holder && holder.pid !== pid) return { ok: false, holder };
    // Stale (its process is gone) or unreadable: take it over, then look again, as another server may have too.
    renameSync(partial, pathOf(dataDir));
    const now = readServerFile(dataDir);
    return now && now.pid !== pid ? { ok: false, holder: now } : { ok: true };
  } finally {
    rmSync(partial, { force: true });
  }
}

/** Removes the file if this process still holds it, never another server's. */
export function removeServerFile(dataDir: string, pid: number): void {
  const current = readServerFile(dataDir);
  if (current?.pid === pid) rmSync(pathOf(dataDir), { force: true });
}

/** The server recorded in the folder, if its process is still alive. */
export function readServerFile(dataDir: string): ServerFile | null {
  let info: ServerFile;
  try {
    info = ServerFile.parse(JSON.parse(readFileSync(pathOf(dataDir), "utf8")));
  } catch {
    return null;
  }
  try {
    process.kill(info.pid, 0);
    return info;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? info : null;
  }
}
