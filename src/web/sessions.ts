import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, isNull, lt, or } from "drizzle-orm";
import { audit } from "../audit/log.ts";
import type { Database } from "../db/connection.ts";
import { webSessions } from "../db/schema.ts";

/** Who signed in: with the admin token (`admin`, named as they said), or as an OpenID Connect member. */
export interface SessionIdentity {
  kind: "admin" | "oidc";
  /** The member's user id for `oidc`; the name given for `admin`. */
  subject: string;
  name: string;
}

export interface WebSession extends SessionIdentity {
  /** What the cookie carries; only its hash is stored. */
  id: string;
  csrf: string;
  expiresAt: Date;
}

const hashOf = (id: string) => createHash("sha256").update(id).digest("hex");
const token = () => randomBytes(32).toString("base64url");

/** How a session is named in the audit log: the actor it acts as. */
export const sessionActor = (s: SessionIdentity) => (s.kind === "admin" ? `admin:${s.subject}` : `oidc:${s.subject}`);

/** Dashboard sessions in Postgres, so every gateway sees them and signing out (or an admin) revokes them. */
export class WebSessions {
  constructor(
    private readonly database: Pick<Database, "db">,
    private readonly ttlMs: number,
  ) {}

  /** A new session, audited as a sign-in of its person. */
  async create(identity: SessionIdentity, now = new Date()): Promise<WebSession> {
    const session = { ...identity, id: token(), csrf: token(), expiresAt: new Date(now.getTime() + this.ttlMs) };
    await this.database.db.transaction(async (tx) => {
      await tx.insert(webSessions).values({ idHash: hashOf(session.id), kind: session.kind, subject: session.subject, name: session.name, csrf: session.csrf, createdAt: now, expiresAt: session.expiresAt });
      await audit(tx, { actor: sessionActor(session), action: "sign_in", entity: "session", entityId: hashOf(session.id).slice(0, 16), after: { kind: session.kind, name: session.name, expires_at: session.expiresAt } });
    });
    return session;
  }

  /** The live session with this id: not revoked, not expired. */
  async find(id: string, now = new Date()): Promise<WebSession | undefined> {
    const [row] = await this.database.db
      .select()
      .from(webSessions)
      .where(and(eq(webSessions.idHash, hashOf(id)), isNull(webSessions.revokedAt), gt(webSessions.expiresAt, now)));
    return row && { id, kind: row.kind, subject: row.subject, name: row.name, csrf: row.csrf, expiresAt: row.expiresAt };
  }

  /** Signs a session out; audited when it was live. */
  async revoke(session: WebSession, now = new Date()): Promise<void> {
    await this.database.db.transaction(async (tx) => {
      const revoked = await tx
        .update(webSessions)
        .set({ revokedAt: now })
        .where(and(eq(webSessions.idHash, hashOf(session.id)), isNull(webSessions.revokedAt)))
        .returning({ idHash: webSessions.idHash });
      if (revoked.length > 0) await audit(tx, { actor: sessionActor(session), action: "sign_out", entity: "session", entityId: hashOf(session.id).slice(0, 16) });
    });
  }

  /** Forgets sessions that ended a day or more ago (expired or revoked). */
  async prune(now = new Date()): Promise<number> {
    const dayAgo = new Date(now.getTime() - 86_400_000);
    const gone = await this.database.db
      .delete(webSessions)
      .where(or(lt(webSessions.expiresAt, dayAgo), lt(webSessions.revokedAt, dayAgo)))
      .returning({ idHash: webSessions.idHash });
    return gone.length;
  }
}
