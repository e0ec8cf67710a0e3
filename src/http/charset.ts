import { TextDecoder } from "node:util";
import type { Failure } from "../errors.ts";

/**
 * A text body decoded by the `charset` of its content type (UTF-8 when none is named), so a
 * UTF-16 body is read as UTF-16 rather than as UTF-8 garbage. An unknown charset is refused (415)
 * and bytes that are not valid in theirs are refused (400): nothing is silently replaced.
 */
export function textOf(body: Uint8Array, contentType: string | undefined): { ok: true; text: string } | Failure<"unsupported_media_type" | "invalid"> {
  const named = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "")?.[1]?.toLowerCase() ?? "utf-8";
  // The WHATWG label "utf-16" means little-endian; a big-endian byte order mark says otherwise.
  const label = named === "utf-16" && body[0] === 0xfe && body[1] === 0xff ? "utf-16be" : named;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    return { ok: false, kind: "unsupported_media_type", message: `charset "${named}" is not supported; send UTF-8 (or UTF-16)` };
  }
  try {
    return { ok: true, text: decoder.decode(body) };
  } catch {
    return { ok: false, kind: "invalid", message: `the body is not valid ${decoder.encoding}` };
  }
}
