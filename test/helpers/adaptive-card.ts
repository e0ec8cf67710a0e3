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
  // Teams' chart elements are an extension the reference parser does not know: each is checked
  // against Teams' documented shape, and the parser reads the card as a client without charts
  // would, with each chart's fallback in its place.
  const withoutCharts = replaceCharts(json, "$", problems);
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  card.parse(withoutCharts as object, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(`parse: ${context.getEventAt(i).message}`);
  const validation = card.validateProperties() as unknown as { validationEvents: { message: string }[] };
  for (const event of validation.validationEvents) problems.push(`validate: ${event.message}`);
  compare(withoutCharts, card.toJSON(), "$", problems);
  return problems;
}

/**
 * The chart elements Teams documents
 * (https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/charts-in-adaptive-cards):
 * bar charts' data are `{x, y}` points, a line chart's and a grouped bar chart's are series
 * `{legend, values: [{x, y}]}` (the grouped bars stacked when `stacked` is true), a pie's or
 * donut's are slices `{legend, value}`; values are numbers.
 */
export function chartProblems(element: Record<string, unknown>, path: string): string[] {
  const problems: string[] = [];
  const data = element.data;
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  if (!Array.isArray(data) || data.length === 0) return [`${path}.data: a non-empty array is required`];
  const point = (p: { x?: unknown; y?: unknown }, at: string) => {
    if (typeof p.x !== "string" && !num(p.x)) problems.push(`${at}.x: a string or number`);
    if (!num(p.y)) problems.push(`${at}.y: a number`);
  };
  switch (element.type) {
    case "Chart.VerticalBar":
    case "Chart.HorizontalBar":
      data.forEach((p, i) => point(p as { x?: unknown; y?: unknown }, `${path}.data[${i}]`));
      break;
    case "Chart.VerticalBar.Grouped":
    case "Chart.Line":
      if (element.stacked !== undefined && (element.type !== "Chart.VerticalBar.Grouped" || typeof element.stacked !== "boolean")) problems.push(`${path}.stacked: a boolean, on grouped bars only`);
      data.forEach((series: { legend?: unknown; values?: unknown }, i) => {
        if (typeof series.legend !== "string") problems.push(`${path}.data[${i}].legend: a string`);
        if (!Array.isArray(series.values) || series.values.length === 0) problems.push(`${path}.data[${i}].values: a non-empty array`);
        else series.values.forEach((p, j) => point(p as { x?: unknown; y?: unknown }, `${path}.data[${i}].values[${j}]`));
      });
      break;
    case "Chart.Pie":
    case "Chart.Donut":
      data.forEach((slice: { legend?: unknown; value?: unknown }, i) => {
        if (typeof slice.legend !== "string") problems.push(`${path}.data[${i}].legend: a string`);
        if (!num(slice.value)) problems.push(`${path}.data[${i}].value: a number`);
      });
      break;
    default:
      problems.push(`${path}: ${String(element.type)} is not a chart Teams draws`);
  }
  if (element.title !== undefined && typeof element.title !== "string") problems.push(`${path}.title: a string`);
  const fallback = element.fallback;
  if (fallback === undefined || (fallback !== "drop" && (typeof fallback !== "object" || fallback === null))) problems.push(`${path}.fallback: an element for clients without charts (or "drop")`);
  return problems;
}

function replaceCharts(json: unknown, path: string, problems: string[]): unknown {
  if (Array.isArray(json)) {
    return json.flatMap((item, i) => {
      const replaced = replaceCharts(item, `${path}[${i}]`, problems);
      return replaced === undefined ? [] : [replaced];
    });
  }
  if (json && typeof json === "object") {
    const o = json as Record<string, unknown>;
    if (typeof o.type === "string" && o.type.startsWith("Chart.")) {
      problems.push(...chartProblems(o, path));
      return o.fallback === "drop" ? undefined : replaceCharts(o.fallback, `${path}.fallback`, problems);
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, replaceCharts(v, `${path}.${k}`, problems)]));
  }
  return json;
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
