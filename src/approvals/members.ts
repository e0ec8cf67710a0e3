import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { audit } from "../audit/log.ts";
import { Scope } from "../budgets/budget.ts";
import type { Database, Db } from "../db/connection.ts";
import { ROLES, members } from "../db/schema.ts";
import { labelText } from "../keys/api-keys.ts";
import { unknownFieldError } from "../errors.ts";

export type Role = (typeof ROLES)[number];

/** Whether `role` may do what `needed` may: each role can do everything of the ones before it. */
export const hasRole = (role: Role, needed: Role) => ROLES.indexOf(role) >= ROLES.indexOf(needed);


export interface Member {
  platform: string;
  user_id: string;
  role: Role;
  name: string | null;
  /** What a viewer may see on the dashboard, one scope at a time; other roles see all spend. */
  scopes: Scope[];
  updated_at: Date;
}

/**
 * Who acts on an approval: a person on a platform, whose role is looked up, or the bearer of the
 * admin token, who is an admin. Written `PLATFORM:USER_ID` (the user id is everything after the
 * first colon, as some platforms' ids contain colons) or `admin`.
 */
export type Actor =
  /** `name` is what the platform calls them, shown when the member has no name of their own. */
  | { kind: "member"; platform: string; userId: string; name?: string }
  | { kind: "admin"; label: string };

/**
 * How members and actors are written on one gateway. People act from its chat platforms, which
 * are composed in from integrations/ (src names none), or from `cli` with their own user name; so
 * the schemas that check a platform are made per gateway, from the platforms it was given.
 */
export function memberSchemas(chatPlatforms: readonly string[]) {
  const platforms = [...new Set([...chatPlatforms, "cli"])];
  const oneOf = `one of ${platforms.join(", ")}`;
  /** Reads `PLATFORM:USER_ID` or `admin`; `admin` stands for `adminLabel`, the admin API's own actor name. */
  const parseActor = (text: string, adminLabel: string): Actor | undefined => {
    if (text === "admin") return { kind: "admin", label: adminLabel };
    const colon = text.indexOf(":");
    const platform = text.slice(0, colon);
    const userId = text.slice(colon + 1);
    if (colon < 1 || !platforms.includes(platform) || !labelText.safeParse(userId).success) return undefined;
    return { kind: "member", platform, userId };
  };
  const memberFields = {
    platform: z.string({ error: oneOf }).refine((p) => platforms.includes(p), oneOf),
    user_id: labelText,
    role: z.enum(ROLES, { error: `one of ${ROLES.join(", ")}` }),
    name: labelText.optional(),
    /** The scopes a viewer may see on the dashboard (team:search, ...); a viewer given none sees no spend. */
    scopes: z.array(Scope).max(50).optional(),
  };
  return {
    platforms,
    parseActor,
    /** A field naming an actor, checked as parseActor reads it. */
    actorRef: z.string().refine((text) => parseActor(text, "admin") !== undefined, `"admin" or PLATFORM:USER_ID with PLATFORM ${oneOf}`),
    MemberInput: z.strictObject(memberFields, { error: unknownFieldError("a member", Object.keys(memberFields)) }),
  };
}
export type MemberSchemas = ReturnType<typeof memberSchemas>;
export type MemberInput = z.infer<MemberSchemas["MemberInput"]>;

export const actorText = (actor: Actor) => (actor.kind === "admin" ? actor.label : `${actor.platform}:${actor.userId}`);

type Reader = Pick<Db, "select">;

const memberOf = (row: typeof members.$inferSelect): Member => ({
  platform: row.platform,
  user_id: row.userId,
  role: row.role,
  name: row.name,
  scopes: row.scopes,
  updated_at: row.updatedAt,
});

/** Platform users and their roles, every change audited in the same transaction. */
export class Members {
  readonly schemas: MemberSchemas;

  /** `chatPlatforms`: the chat integrations this gateway was composed with. */
  constructor(
    private readonly database: Pick<Database, "db">,
    chatPlatforms: readonly string[],
  ) {
    this.schemas = memberSchemas(chatPlatforms);
  }

  async list(): Promise<Member[]> {
    return (await this.database.db.select().from(members).orderBy(asc(members.platform), asc(members.userId))).map(memberOf);
  }

  async find(platform: string, userId: string, db: Reader = this.database.db): Promise<Member | undefined> {
    const [row] = await db.select().from(members).where(and(eq(members.platform, platform), eq(members.userId, userId)));
    return row ? memberOf(row) : undefined;
  }

  /** The name cards show for an actor: the member's own, else the platform's; the admin token's bearer is known by its label. */
  async displayName(actor: Actor, db: Reader = this.database.db): Promise<string | null> {
    if (actor.kind === "admin") return null;
    return (await this.find(actor.platform, actor.userId, db))?.name ?? actor.name ?? null;
  }

  /** People nobody has given a role are viewers: they may look, not ask or decide. */
  async roleOf(platform: string, userId: string, db: Reader = this.database.db): Promise<Role> {
    return (await this.find(platform, userId, db))?.role ?? "viewer";
  }

  async roleOfActor(actor: Actor, db: Reader = this.database.db): Promise<Role> {
    return actor.kind === "admin" ? "admin" : this.roleOf(actor.platform, actor.userId, db);
  }

  /** Adds a member or changes one's role or name; `created` tells which. */
  async set(input: MemberInput, actor: string): Promise<{ member: Member; created: boolean }> {
    return this.database.db.transaction(async (tx) => {
      const [locked] = await tx
        .select()
        .from(members)
        .where(and(eq(members.platform, input.platform), eq(members.userId, input.user_id)))
        .for("update");
      const before = locked ? memberOf(locked) : undefined;
      const values = { platform: input.platform, userId: input.user_id, role: input.role, name: input.name ?? before?.name ?? null, scopes: input.scopes ?? before?.scopes ?? [], updatedAt: new Date() };
      const [row] = await tx
        .insert(members)
        .values(values)
        .onConflictDoUpdate({ target: [members.platform, members.userId], set: { role: values.role, name: values.name, scopes: values.scopes, updatedAt: values.updatedAt } })
        .returning();
      const member = memberOf(row!);
      await audit(tx, { actor, action: before ? "update" : "create", entity: "member", entityId: `${member.platform}:${member.user_id}`, before, after: member });
      return { member, created: !before };
    });
  }

  async remove(platform: string, userId: string, actor: string): Promise<Member | undefined> {
    return this.database.db.transaction(async (tx) => {
      const [row] = await tx.delete(members).where(and(eq(members.platform, platform), eq(members.userId, userId))).returning();
      if (!row) return undefined;
      const member = memberOf(row);
      await audit(tx, { actor, action: "delete", entity: "member", entityId: `${platform}:${userId}`, before: member });
      return member;
    });
  }
}
