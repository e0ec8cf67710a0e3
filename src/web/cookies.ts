import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signed cookie values: `VALUE.SIGNATURE`, an HMAC-SHA256 under a key derived from the gateway's
 * master key, so a cookie made by another gateway (another key) is refused before any lookup.
 */
export class CookieSigner {
  private readonly key: Buffer;

  /** `purpose` separates keys, so no cookie of one kind passes as another. */
  constructor(masterKey: Buffer, purpose: string) {
    this.key = createHmac("sha256", masterKey).update(`tollgate web cookie: ${purpose}`).digest();
  }

  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The value of a signed cookie, or undefined when it is missing, malformed or signed by another key. */
  verify(signed: string | undefined): string | undefined {
    if (!signed) return undefined;
    const dot = signed.lastIndexOf(".");
    if (dot < 1) return undefined;
    const value = signed.slice(0, dot);
    const given = Buffer.from(signed.slice(dot + 1));
    const expected = Buffer.from(this.mac(value));
    return given.length === expected.length && timingSafeEqual(given, expected) ? value : undefined;
  }

  private mac(value: string): string {
    return createHmac("sha256", this.key).update(value).digest("base64url");
  }
}

/** The cookies of a request by name; a malformed header yields what can be read of it. */
export function readCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

export interface CookieOptions {
  /** Seconds; 0 removes the cookie. */
  maxAge: number;
  /** Set when the dashboard is reached over https (directly or behind a proxy that says so). */
  secure: boolean;
  path?: string;
}

/** A Set-Cookie value: HttpOnly and SameSite=Lax always, Secure behind https. */
export function cookieHeader(name: string, value: string, { maxAge, secure, path = "/" }: CookieOptions): string {
  return [`${name}=${value}`, `Path=${path}`, `Max-Age=${maxAge}`, "HttpOnly", "SameSite=Lax", ...(secure ? ["Secure"] : [])].join("; ");
}
