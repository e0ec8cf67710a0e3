import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { z } from "zod";

/*
 * Data a package ships as a large JavaScript module (genai-prices' providers, gpt-tokenizer's
 * ranks), written once by `npm run build` as JSON beside the compiled code. Such a module keeps its
 * source text in the heap for the life of the process, and compiling it leaves more resident (the
 * allocator keeps the parser's memory); parsing the same data as JSON leaves neither
 * (bench/RESULTS.md, memory). Each file is stamped with the version of the package it came from: a file from
 * another version is not read, and the caller loads the package itself, as it does when running
 * from the TypeScript sources, where the build has written nothing.
 */

const Stamped = z.object({ version: z.string(), data: z.unknown() });

/** The data of `file` when it was written from `version`; undefined when it is absent or from another version. */
export function readBuilt(file: string, version: string): unknown {
  if (!existsSync(file)) return undefined;
  const stamped = Stamped.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!stamped.success) throw new Error(`${file} is not data the build writes; rebuild with \`npm run build\``);
  return stamped.data.version === version ? stamped.data.data : undefined;
}

export function writeBuilt(file: string, version: string, data: unknown): void {
  writeFileSync(file, JSON.stringify({ version, data }));
}

/** An installed package's own package.json (with its version; a build folder may hold a partial one), found above its resolved entry point: packages' exports often hide it. */
export function packageJson(name: string): unknown {
  let dir = dirname(createRequire(import.meta.url).resolve(name));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
      if (json.name === name && json.version !== undefined) return json;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json of ${name} above its entry point`);
    dir = parent;
  }
}
