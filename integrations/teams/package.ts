import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateRawSync } from "node:zlib";
import type { IntegrationCommandContext } from "../../src/integration.ts";

/*
 * The Teams app package: manifest.json with this bot's ids filled in, and the two icons, zipped
 * as Teams' "Upload a custom app" takes it (files at the root of the zip).
 */

export const MANIFEST_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../manifest/teams");
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The manifest for a bot: its id is the app's id and the bot's; the version and domain as given. */
export function filledManifest(botId: string, options: { version?: string; domain?: string } = {}): Record<string, unknown> {
  const manifest = JSON.parse(readFileSync(join(MANIFEST_DIR, "manifest.json"), "utf8")) as Record<string, unknown> & { bots: { botId: string }[] };
  return {
    ...manifest,
    id: botId,
    ...(options.version ? { version: options.version } : {}),
    bots: manifest.bots.map((b) => ({ ...b, botId })),
    ...(options.domain ? { validDomains: [options.domain] } : {}),
  };
}

/** A zip of stored-and-deflated files (PKZIP 2.0, no extras), enough for an app package. */
export function zip(files: { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const file of files) {
    const name = Buffer.from(file.name, "utf8");
    const packed = deflateRawSync(file.data);
    const crc = crc32(file.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(file.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += local.length + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** `tollgate teams-package --bot-id GUID [--out tollgate-teams.zip] [--app-version 1.0.1] [--domain tollgate.example.com]` */
export async function teamsPackageCommand(ctx: IntegrationCommandContext): Promise<number> {
  const botId = ctx.options["bot-id"];
  if (typeof botId !== "string" || !GUID.test(botId)) {
    process.stderr.write("tollgate teams-package: --bot-id expected the bot's Microsoft app id, a GUID such as 2f1a...-...\n");
    return 2;
  }
  const out = typeof ctx.options.out === "string" ? ctx.options.out : "tollgate-teams.zip";
  const version = typeof ctx.options["app-version"] === "string" ? ctx.options["app-version"] : undefined;
  const domain = typeof ctx.options.domain === "string" ? ctx.options.domain : undefined;
  const manifest = filledManifest(botId, { ...(version ? { version } : {}), ...(domain ? { domain } : {}) });
  writeFileSync(
    out,
    zip([
      { name: "manifest.json", data: Buffer.from(JSON.stringify(manifest, null, 2)) },
      { name: "color.png", data: readFileSync(join(MANIFEST_DIR, "color.png")) },
      { name: "outline.png", data: readFileSync(join(MANIFEST_DIR, "outline.png")) },
    ]),
  );
  process.stdout.write(`${out}: upload it in Teams (Apps → Manage your apps → Upload an app).\n`);
  return 0;
}
