/*
 * glibc's malloc serves a large block from an mmap of its own only above a threshold that it
 * raises, up to 32 MB, each time such a block is freed. A gateway's first upstream calls have V8
 * optimise undici's WebAssembly HTTP parser on a helper thread, which takes that thread's arena to
 * ~36 MB for a moment; with the threshold raised, those blocks come from the arena, and what glibc
 * keeps resident of it once they are freed (it gives back only an arena's top) is 0.2–4 MB after
 * some starts and ~10 MB after others. Set explicitly, the threshold stays where it is: blocks of
 * 128 KB and over are mapped and unmapped whole, and the residue goes (bench/RESULTS.md, memory;
 * docs/operations.md, Memory). Socket reads (64 KB) stay below it, so the hot path makes no more
 * system calls.
 *
 * glibc reads the setting once, as a process starts: `tollgate` cannot set it for itself, only for
 * the processes it starts, its workers. A single-process gateway takes it from its service's
 * environment.
 */

/** The threshold, bytes: glibc's own starting value, kept from moving. */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

/**
 * What a worker's environment adds for glibc's malloc: nothing when the operator set the threshold
 * themselves, as the variable or as its tunable (`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…`,
 * entries separated by colons). Their other malloc settings, such as the number of arenas, leave it
 * free to move, so it is still fixed beside them; where one of theirs already stops it moving (a
 * trim threshold, a top pad), glibc's starting value is the one set here anyway.
 */
export function mallocEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const tunables = (env.GLIBC_TUNABLES ?? "").split(":").map((entry) => entry.split("=", 1)[0]!.trim());
  const set = env.MALLOC_MMAP_THRESHOLD_ !== undefined || tunables.includes("glibc.malloc.mmap_threshold");
  return set ? {} : { MALLOC_MMAP_THRESHOLD_: String(MMAP_THRESHOLD_BYTES) };
}
