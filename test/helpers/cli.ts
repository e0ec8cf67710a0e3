import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HANG_MS } from "./wait.ts";

/**
 * The `tollgate` entry point in a child process, from its TypeScript through tsx: the tests check
 * the sources as they are, not a dist/ compiled before the last edit (CI's smoke run covers dist/).
 */
export const BIN = join(fileURLToPath(new URL("../..", import.meta.url)), "bin", "main.ts");
/** `node` arguments that run BIN: tsx by its full address, as the child's working directory is anywhere. */
export const BIN_ARGS = ["--import", import.meta.resolve("tsx"), BIN];

/** The parent's environment without anything that would point the CLI elsewhere, plus `extra`. */
export function cliEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("TOLLGATE_") || k.startsWith("NODE_TEST") || ["DATABASE_URL", "TEST_DATABASE_URL", "PORT", "HOST", "LOG_LEVEL", "NODE_OPTIONS"].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, TOLLGATE_DATA_DIR: dataDir, LOG_LEVEL: "silent", ...extra };
}


export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tollgate ARGS` in `dataDir` (or `cwd`) and collects what it printed and how it exited;
 * `TOLLGATE_DATA_DIR: ""` in `extra` leaves the CLI to find its data folder.
 */
export function runCli(dataDir: string, args: string[], extra: Record<string, string> = {}, input = "", cwd = dataDir): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [...BIN_ARGS, ...args], { cwd, env: cliEnv(dataDir, extra), timeout: HANG_MS }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}
