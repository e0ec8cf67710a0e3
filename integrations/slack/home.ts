import type { types } from "@slack/bolt";
import type { Home } from "../../commands/home.ts";
import type { Reply } from "../../commands/reply.ts";
import { andMore } from "../../commands/truncate.ts";
import { type Block, LIMITS, type RenderOptions, alertBlocks, escapeMrkdwn, mrkdwn, plain, replyMessage, section, when } from "./blocks.ts";

/*
 * The App Home tab as Block Kit: pure functions from the neutral Home (commands/home.ts) to the
 * view views.publish takes. Its parts are rendered as the same answers and requests are in
 * messages (replyMessage, alertBlocks), so they escape the same and carry the same buttons. A view
 * holds 100 blocks; raises that do not fit are counted in a last line.
 */

export interface HomeViewOptions extends RenderOptions {
  /** The answer to what was just pressed on the tab, shown above the rest. */
  notice?: Reply;
  /** When the tab was drawn. */
  at: Date;
}

const DIVIDER: Block = { type: "divider" };

/**
 * The Home tab for `home`; its charts (at most two, as in a message) as Slack's own blocks unless
 * `native` is false. Without `home` (it could not be read), the notice alone.
 */
export function homeView(home: Home | undefined, options: HomeViewOptions): types.HomeView {
  let charts = options.native === false ? 0 : LIMITS.chartsPerMessage;
  /** A reply's blocks, its charts native while the view has room for them. */
  const answer = (r: Reply) => {
    const native = charts >= Math.min(r.charts.length, LIMITS.chartsPerMessage) && r.charts.length > 0;
    if (native) charts -= Math.min(r.charts.length, LIMITS.chartsPerMessage);
    return replyMessage(r, { native }).blocks;
  };
  const blocks: Block[] = [];
  if (options.notice) blocks.push(...answer(options.notice), DIVIDER);
  if (!home) return { type: "home", blocks: blocks.slice(0, -1) as types.HomeView["blocks"] };
  blocks.push(
    { type: "header", text: plain("Tollgate", LIMITS.headerText) },
    { type: "context", elements: [mrkdwn(`${escapeMrkdwn(home.about)} Updated ${when(options.at.toISOString(), "{date_short_pretty} at {time}")}.`)] },
  );
  for (const r of home.spend) blocks.push(...answer(r));
  if (home.notes.length > 0) blocks.push({ type: "context", elements: home.notes.slice(0, LIMITS.contextElements).map((n) => mrkdwn(escapeMrkdwn(n))) });
  blocks.push(DIVIDER, section(`*Raises waiting for you*${home.raises.length > 0 ? "" : "\nNone just now."}`));

  let shown = 0;
  for (const raise of home.raises) {
    // A raise's chart, if it had one, as text: the tab's two native charts are the spend answers'.
    const next = [...(shown > 0 ? [DIVIDER] : []), ...alertBlocks(raise.request, false), ...(raise.note ? [{ type: "context", elements: [mrkdwn(escapeMrkdwn(raise.note))] } as Block] : [])];
    if (blocks.length + next.length > LIMITS.viewBlocks - 1) break;
    blocks.push(...next);
    shown++;
  }
  const more = home.raises.length - shown + home.moreRaises;
  if (more > 0) blocks.push({ type: "context", elements: [mrkdwn(`${andMore(more)} raises: the approvals channel has every one.`)] });
  return { type: "home", blocks: blocks as types.HomeView["blocks"] };
}
