import { type Tokens, ZERO_TOKENS } from "../../src/ledger/event.ts";

/** Token classes with only the named ones set. */
export const tokens = (t: Partial<Tokens>): Tokens => ({ ...ZERO_TOKENS, ...t });
