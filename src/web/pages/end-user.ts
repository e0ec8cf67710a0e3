/** One end user's data for admins: look up, export, erase (after typing the id). Pure HTML out, every value escaped. */
import type { FieldError } from "../../errors.ts";
import type { Erasure, UserFootprint } from "../../ledger/user-data.ts";
import { type Html, html } from "../html.ts";
import { count, csrfForm, errorList, money } from "../layout.ts";

const query = (user: string) => new URLSearchParams({ user }).toString();

function lookupForm(user: string): Html {
  return html`<form class="filters" method="get" action="/users" role="search" aria-label="End user">
<label><span>End user id (the <code>user</code> of their usage)</span><input name="user" value="${user}" maxlength="200" required size="40"></label>
<button class="primary" type="submit">Look up</button></form>`;
}

/** The lookup form; with a user, what the rollups hold of them and the ways to export and erase. */
export function endUserPage(user: string, found: UserFootprint | undefined, errors: readonly FieldError[] = []): Html {
  return html`<h1>End user data</h1>
<p>Everything Tollgate holds of an end user is their usage events (never prompts or answers) and the rollups counted from them.
Export them (NDJSON, as <code>GET /api/users/:user/usage</code> answers) or erase them, with every rollup reduced by exactly what they contributed.</p>
${lookupForm(user)}${errorList(errors)}
${found ? footprint(user, found) : ""}`;
}

function footprint(user: string, f: UserFootprint): Html {
  if (f.requests === 0) return html`<p class="muted" id="footprint">No usage is recorded for the end user <strong>${user}</strong>.</p>`;
  return html`<section id="footprint" aria-labelledby="footprint-head"><h2 id="footprint-head">${user}</h2>
<p><span id="footprint-requests">${count(f.requests)}</span> requests from ${f.first_day} to ${f.last_day}, ${money(f.cost)} in all (as the rollups count them).</p>
<p><a class="primary" href="/users/usage.ndjson?${query(user)}" download>Export their usage (NDJSON)</a></p>
<p><a href="/users/erase?${query(user)}">Erase their usage…</a></p></section>`;
}

/** The confirm step: the id typed again, so a wrong or mistyped link erases nothing. */
export function erasePage(user: string, f: UserFootprint, csrf: string, mismatch: boolean): Html {
  return html`<h1>Erase the usage of ${user}?</h1>
<p>This deletes their ${count(f.requests)} recorded requests (${money(f.cost)}) for good and takes exactly their part off every rollup:
spend figures for their teams, projects and models go down by what they spent. The audit log keeps who erased them and how many events, nothing else.</p>
${mismatch ? html`<p class="error" role="alert">The id typed does not match ${user}; nothing was erased.</p>` : ""}
${csrfForm(
  "/users/erase",
  csrf,
  html`<input type="hidden" name="user" value="${user}">
<p><label for="confirm">Type the end user id to confirm</label><br><input id="confirm" name="confirm" autocomplete="off" required maxlength="200" size="40"></p>
<p><button class="primary" type="submit">Erase their usage</button> <a href="/users?${query(user)}">Cancel</a></p>`,
  `Erase the usage of ${user}`,
)}`;
}

export function erasedPage(e: Erasure): Html {
  return html`<h1>Usage of ${e.user} erased</h1>
<p class="notice" role="status"><span id="erased-events">${count(e.events)}</span> events erased in ${count(e.batches)} batches, and <span id="erased-orphans">${count(e.rollup_rows_without_events)}</span> of their rollup rows whose events retention had already deleted. The rollups were reduced by exactly what the events contributed.</p>
<p><a href="/users">Look up another end user</a></p>`;
}
