/**
 * The alerts and deliveries page: the outbox (each message's channel, state, attempts, next try,
 * last error and the alerts it carries), its dead letters with a Resend button for admins, and the
 * latest alerts sent. As `/api/outbox` lists them; the page is given only what its reader may see.
 */
import type { Alert } from "../../alerts/alert.ts";
import type { NotificationInfo, NotificationStatus } from "../../alerts/outbox.ts";
import { NOTIFICATION_STATUSES } from "../../db/schema.ts";
import { type Html, html } from "../html.ts";
import { csrfForm, table, when } from "../layout.ts";
import { alertsTable } from "../pages.ts";

const STATE_CLASS: Record<NotificationStatus, string> = { pending: "warning", delivered: "ok", dead: "over" };

/** With `csrf`, a Resend button on each dead message. */
export function deliveriesTable(caption: string, rows: readonly NotificationInfo[], resend: { csrf: string } | undefined, empty: string): Html {
  return table<NotificationInfo>(
    caption,
    [
      { head: "Message", cell: (n) => html`${n.id}<br><span class="muted">${when(n.created_at)}</span>` },
      { head: "Channel", cell: (n) => html`${n.channel.name}<br><span class="muted">${n.channel.platform}</span>` },
      { head: "State", cell: (n) => html`<span class="state-${STATE_CLASS[n.status]}">${n.status}</span>${n.delivered_at ? html`<br><span class="muted">${when(n.delivered_at)}</span>` : ""}` },
      { head: "Attempts", num: true, cell: (n) => n.attempts },
      { head: "Next attempt", cell: (n) => (n.next_attempt_at ? when(n.next_attempt_at) : html`<span class="muted">none</span>`) },
      { head: "Last error", cell: (n) => n.last_error ?? "" },
      { head: "Alerts", cell: (n) => (n.alerts.length > 0 ? html`<ul class="plain">${n.alerts.map((a) => html`<li>${a.title} <span class="muted">(${a.kind})</span></li>`)}</ul>` : html`<span class="muted">unreadable</span>`) },
      ...(resend
        ? [{ head: "Resend", cell: (n: NotificationInfo) => (n.status === "dead" ? csrfForm(`/alerts/deliveries/${n.id}/resend`, resend.csrf, html`<button type="submit">Resend message ${n.id}</button>`) : "") }]
        : []),
    ],
    rows,
    empty,
  );
}

export function statusFilter(status: NotificationStatus | undefined): Html {
  return html`<form class="filters" method="get" action="/alerts" aria-label="Delivery filter"><label>Status<select name="status"><option value="">any</option>${NOTIFICATION_STATUSES.map(
    (s) => html`<option value="${s}"${s === status ? html` selected` : ""}>${s}</option>`,
  )}</select></label><button class="primary" type="submit">Show</button></form>`;
}

export interface AlertsPageProps {
  status: NotificationStatus | undefined;
  dead: readonly NotificationInfo[];
  messages: readonly NotificationInfo[];
  recent: readonly Alert[];
  resend: { csrf: string } | undefined;
  /** A notice or error above the tables (after a resend). */
  message?: Html;
}

export function alertsPage({ status, dead, messages, recent, resend, message }: AlertsPageProps): Html {
  return html`${message ?? ""}
<h2>Dead letters</h2><p class="muted">Messages that failed every try, or were refused; resending gives one its tries back.</p>
${deliveriesTable("Dead letters", dead, resend, "none.")}
<h2>Deliveries</h2>${statusFilter(status)}
${deliveriesTable(status ? `Messages ${status}` : "Messages", messages, resend, "none.")}
<h2>Recent alerts</h2>${alertsTable(recent)}`;
}
