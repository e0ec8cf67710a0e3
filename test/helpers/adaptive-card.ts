import * as AC from "adaptivecards";

/**
 * What is wrong with a card as Adaptive Cards 1.5 reads it, by the `adaptivecards` package (the
 * reference renderer's own parser): unknown element and action types, elements newer than 1.5,
 * duplicate input ids and invalid property values, and any property the parser does not know
 * (dropped when it writes the card back). Empty when the card is valid.
 *
 * The parser never writes back `fallback` on actions nor the Teams-only `msteams` object, and
 * leaves out `firstRowAsHeader` at its default: those keys are compared by hand instead.
 */
export function cardProblems(json: unknown): string[] {
  const problems: string[] = [];
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  card.parse(json as object, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(`parse: ${context.getEventAt(i).message}`);
  const validation = card.validateProperties() as unknown as { validationEvents: { message: string }[] };
  for (const event of validation.validationEvents) problems.push(`validate: ${event.message}`);
  compare(json, card.toJSON(), "$", problems);
  return problems;
}

const HOST_KEYS = new Set(["msteams", "firstRowAsHeader"]);

function compare(ours: unknown, theirs: unknown, path: string, problems: string[]): void {
  if (Array.isArray(ours)) {
    if (!Array.isArray(theirs) || theirs.length !== ours.length) return void problems.push(`${path}: array not read back whole`);
    ours.forEach((item, i) => compare(item, theirs[i], `${path}[${i}]`, problems));
    return;
  }
  if (ours && typeof ours === "object") {
    const back = (theirs ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(ours)) {
      if (HOST_KEYS.has(key)) continue;
      if (key === "fallback") {
        const type = (value as { type?: string }).type;
        if (type !== "Action.Submit" || (ours as { type?: string }).type !== "Action.Execute") problems.push(`${path}.fallback: expected an Action.Submit under an Action.Execute`);
        continue;
      }
      if (key === "data" || key === "userIds") continue;
      if (!(key in back)) problems.push(`${path}.${key}: not an Adaptive Card 1.5 property here`);
      else compare(value, back[key], `${path}.${key}`, problems);
    }
    return;
  }
  if (ours !== theirs && !(typeof ours === "string" && typeof theirs === "string")) problems.push(`${path}: ${JSON.stringify(ours)} read back as ${JSON.stringify(theirs)}`);
}
