import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const DATA_DIR_NAME = ".tollgate";

export interface DataDir {
  /** Absolute. */
  path: string;
  /** It does not exist yet: the command that needs it creates it. */
  fresh: boolean;
}

const isDirectory = (path: string) => existsSync(path) && statSync(path).isDirectory();

/**
 * The data folder a command uses: TOLLGATE_DATA_DIR when set; else the nearest `.tollgate` in the
 * working directory or one above it, as git finds `.git`, so a command run from a subfolder of
 * the project sees the project's ledger instead of starting an empty one; else `./.tollgate`, new.
 */
export function findDataDir(configured: string | undefined, cwd: string): DataDir {
  if (configured !== undefined && configured.trim() !== "") {
    const path = resolve(cwd, configured);
    return { path, fresh: !existsSync(path) };
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (isDirectory(join(dir, DATA_DIR_NAME))) return { path: join(dir, DATA_DIR_NAME), fresh: false };
    if (dirname(dir) === dir) break;
  }
  return { path: join(resolve(cwd), DATA_DIR_NAME), fresh: true };
}

/** What to tell people once a command has made a new data folder: where, and how to use another. */
export const newDataDirNote = (path: string) =>
  `tollgate: created a new data folder, ${path} (no ${DATA_DIR_NAME} here or in a folder above; TOLLGATE_DATA_DIR names another)`;
