/**
 * A store that answers from memory what it read from the database (keys, signing secrets), and so
 * must hear when another process of the same gateway changed them: with workers, a key revoked
 * through one worker is dropped by every other at once instead of when its cache expires.
 */
export interface CachedStore {
  /** `listener` runs after each change this process made has committed. */
  onChange(listener: () => void): void;
  /** Drops what is held, so the next read goes to the database (a peer process changed it). */
  forget(): void;
}

/** The listeners of one store's committed changes. */
export class ChangeListeners {
  private readonly listeners: (() => void)[] = [];

  add(listener: () => void): void {
    this.listeners.push(listener);
  }

  emit(): void {
    for (const listener of this.listeners) listener();
  }
}
