import type { SubscriptionKind } from "../../src/alerts/alert.ts";
import { actorText } from "../../src/approvals/members.ts";
import { type Scope, describeScope } from "../../src/budgets/budget.ts";
import { type Command, defineCommand } from "../../commands/command.ts";
import { fail, isEverything, kindList, ok, options, scope } from "../../commands/grammar.ts";
import { refused, reply, utcMinute } from "../../commands/reply.ts";
import type { LinkMaker } from "./linker.ts";

export interface TelegramLinkValue {
  verb: "telegram-link";
  scope: Scope;
  kinds: SubscriptionKind[];
}

const FORM = "telegram-link --scope SCOPE [--kinds KINDS], such as telegram-link --scope team:search --kinds alerts,daily";
const OPTIONS = new Map([
  ["scope", "--scope"],
  ["kinds", "--kinds"],
]);

/** `--scope team:search --kinds alerts,daily`, written as the CLI's `tollgate telegram link` takes it (`--scope=...` too). */
function parse(words: string[]) {
  const given = options(words, OPTIONS, FORM, (word) =>
    word.includes(":") || isEverything(word) ? fail(`"${word}" needs --scope before it`, FORM, `telegram-link --scope ${word}`) : fail(`unexpected "${word}"`, FORM),
  );
  if (!given.ok) return given;
  const scopeText = given.values.get("--scope");
  if (scopeText === undefined) return fail("telegram-link needs --scope: what the linked chat follows", `${FORM} (--scope all for all spend)`);
  const s = scope(scopeText);
  if (!s.ok) return s;
  const kindsText = given.values.get("--kinds");
  const kinds = kindsText === undefined ? { ok: true as const, kinds: ["alerts" as const] } : kindList(kindsText);
  if (!kinds.ok) return kinds;
  return ok<TelegramLinkValue>({ verb: "telegram-link", scope: s.scope, kinds: kinds.kinds });
}

/**
 * `telegram-link --scope SCOPE`, typed in any chat: a one-time code that links a Telegram chat to
 * a scope, the same code the admin API and `tollgate telegram link` make. The code is a secret
 * (whoever sends it first gets the chat linked), so it is only answered where the answer is the
 * asker's alone.
 */
export function telegramLinkCommand(links: LinkMaker): Command<TelegramLinkValue> {
  return defineCommand<TelegramLinkValue>({
    name: "telegram-link",
    usage: "telegram-link --scope SCOPE [--kinds alerts,daily,weekly,approvals]",
    examples: ["telegram-link --scope team:search", "telegram-link --scope team:search --kinds alerts,daily"],
    parse,
    // A code opens spend in the scope to whichever chat uses it: as much as subscribing a channel.
    role: () => "admin",
    async run(cmd, ctx) {
      if (!ctx.conversation.private)
        return refused(
          "No link code made here",
          "A link code is a secret and everyone in this conversation would read it: ask where the answer is yours alone (a direct chat with the bot, a command only you see, or tollgate telegram link).",
        );
      const created = await links.create({ scope: cmd.scope, kinds: cmd.kinds, by: actorText(ctx.caller) }, ctx.now);
      if (!created.ok) return refused("No link code made", created.message);
      const { code, expiresAt, deepLink } = created;
      const scopeText = Object.keys(cmd.scope).length > 0 ? describeScope(cmd.scope) : "all spend";
      const minutes = Math.round((expiresAt.getTime() - ctx.now.getTime()) / 60_000);
      return reply({
        title: "Telegram link code",
        summary: `In the Telegram chat that should get ${cmd.kinds.join(", ")} for ${scopeText} (the bot added to it), send /link ${code}`,
        facts: [
          { label: "Code", value: code },
          { label: "Valid until", value: `${utcMinute(expiresAt)} (${minutes} minutes), for one chat` },
          ...(deepLink ? [{ label: "Or open", value: deepLink }] : []),
        ],
        notes: deepLink ? [] : [`Telegram could not be asked the bot's name just now, so there is no link to open: send /link ${code} to the bot.`],
        visibility: "private",
      });
    },
  });
}
