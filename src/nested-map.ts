/**
 * The map under `key` in `level`, made when new: one step down a lookup keyed by several parts in
 * turn. Hot paths key their rows this way rather than by a string joined from the parts, which
 * made a key string per event and kept it alive until the write answered.
 */
export function under<L extends Map<unknown, unknown>>(level: L, key: KeyOf<L>): L {
  let next = level.get(key) as L | undefined;
  if (next === undefined) {
    next = new Map() as L;
    level.set(key, next);
  }
  return next;
}

type KeyOf<L> = L extends Map<infer K, unknown> ? K : never;
