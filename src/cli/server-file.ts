import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/**
 * A running `tollgate serve` leaves its address in the data folder: PGlite lets one process open
 * the folder, so other commands must go through that server instead.
 */
const ServerFile = z.object({ url: z.string(), pid: z.number().int() });
export type ServerFile = z.infer<typeof ServerFile>;

const pathOf = (dataDir: string) => join(dataDir, "server.json");

/** Written aside and renamed into place, so a reader never sees half a file. */
export function writeServerFile(dataDir: string, info: ServerFile): void {
  const partial = `${pathOf(dataDir)}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(info), { mode: 0o600 });
  renameSync(partial, pathOf(dataDir));
}

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
