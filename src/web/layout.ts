import { formatUsd, picoToDecimalString } from "../pricing/money.ts";
import { type Html, type HtmlValue, html, trusted } from "./html.ts";

/**
 * Colours meet WCAG AA contrast (4.5:1 for text) in both schemes; the scheme follows the
 * system's through prefers-color-scheme. No script: every page reads and works without one.
 */
const STYLE = trusted(`
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0b5cad;--panel:#f6f8fa;--warn:#8a4b00;--bad:#b42318;--ok:#1a7f37;
--tollgate-chart-text:#1b1f24;--tollgate-chart-muted:#57606a;--tollgate-chart-grid:#d0d7de}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;--line:#30363d;--accent:#58a6ff;--panel:#161b22;--warn:#f0b000;--bad:#ff7b72;--ok:#3fb950;
--tollgate-chart-text:#e6edf3;--tollgate-chart-muted:#9da7b3;--tollgate-chart-grid:#30363d;
--tollgate-chart-1:#7aa6d6;--tollgate-chart-2:#ffa94d;--tollgate-chart-3:#7fcf73;--tollgate-chart-4:#ff7b7d;--tollgate-chart-5:#8fd8d2}}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px 8px;z-index:1}
header{display:flex;flex-wrap:wrap;gap:12px 24px;align-items:center;padding:10px 20px;border-bottom:1px solid var(--line);background:var(--panel)}
header nav ul{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;margin:0;padding:0}header nav a[aria-current=page]{font-weight:700;text-decoration:none;color:var(--fg)}
.brand{font-weight:700}.who{margin-left:auto;display:flex;gap:10px;align-items:center;color:var(--muted)}
main{padding:16px 20px 40px;max-width:1200px}h1{font-size:1.5rem;margin:.2em 0 .6em}h2{font-size:1.15rem;margin:1.4em 0 .5em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px}.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;background:var(--panel)}
.card .label{color:var(--muted);font-size:.85rem}.card .value{font-size:1.5rem;font-weight:700}.card .note{color:var(--muted);font-size:.85rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:0 24px}
table{border-collapse:collapse;width:100%;margin:.3em 0 1em}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.state-ok{color:var(--ok)}.state-warning{color:var(--warn)}.state-over,.state-blocked{color:var(--bad)}.state-paused{color:var(--muted)}
.muted{color:var(--muted)}.error{border:1px solid var(--bad);color:var(--bad);padding:8px 12px;border-radius:6px}.notice{border:1px solid var(--ok);padding:8px 12px;border-radius:6px}
form.filters{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:end;margin-bottom:1em}form.filters label{display:flex;flex-direction:column;font-size:.9rem}
input,select,button{font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--muted);border-radius:4px;padding:4px 8px}
button{cursor:pointer;background:var(--panel)}button.primary{background:var(--accent);color:var(--bg);border-color:var(--accent)}
form.inline{display:inline}figure{margin:0 0 1em}figure svg{max-width:100%;height:auto}figcaption{font-weight:600}
.fields{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:10px 16px;margin-bottom:1em}.field{display:flex;flex-direction:column;gap:2px;font-size:.9rem}
.field-error{color:var(--bad);font-weight:600}[aria-invalid=true]{border-color:var(--bad);border-width:2px}fieldset{border:1px solid var(--line);border-radius:6px}ul.plain{margin:0;padding-left:1.1em}
details summary{cursor:pointer;color:var(--accent)}.signin{max-width:420px;margin:40px auto}.signin label{display:block;margin:.6em 0 .2em}.signin input{width:100%}
`);

export interface NavItem {
  href: string;
  label: string;
}

export interface PageShell {
  title: string;
  /** The path of the page, to mark its link in the navigation. */
  path: string;
  nav: NavItem[];
  /** Who is signed in, their role, and the CSRF token of their forms. */
  who?: { name: string; role: string; csrf: string };
}

/** A whole page: navigation, who is signed in and a sign-out button, then the content. */
export function page(shell: PageShell, content: HtmlValue): Html {
  const current = (href: string) => (href === shell.path ? trusted(' aria-current="page"') : "");
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="light dark"><title>${shell.title} · Tollgate</title><style>${STYLE}</style></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><span class="brand">Tollgate</span>
${shell.who ? html`<nav aria-label="Dashboard"><ul>${shell.nav.map((n) => html`<li><a href="${n.href}"${current(n.href)}>${n.label}</a></li>`)}</ul></nav>
<div class="who"><span>${shell.who.name} (${shell.who.role})</span>${csrfForm("/sign-out", shell.who.csrf, html`<button type="submit">Sign out</button>`)}</div>` : ""}
</header>
<main id="main">${content}</main></body></html>`;
}

/** A POST form carrying the session's CSRF token. */
export function csrfForm(action: string, csrf: string, body: HtmlValue, label?: string): Html {
  return html`<form class="inline" method="post" action="${action}"${label ? html` aria-label="${label}"` : ""}><input type="hidden" name="_csrf" value="${csrf}">${body}</form>`;
}

/** Money as people read it (to the cent), with the exact decimal for machines in the element's value. */
export function money(pico: bigint): Html {
  return html`<data value="${picoToDecimalString(pico)}">${formatUsd(pico)}</data>`;
}

export const count = (n: number) => n.toLocaleString("en-US");

export function table<T>(caption: HtmlValue, columns: { head: string; num?: boolean; cell: (row: T) => HtmlValue }[], rows: readonly T[], empty = "Nothing yet."): Html {
  if (rows.length === 0) return html`<p class="muted">${caption}: ${empty}</p>`;
  return html`<table><caption>${caption}</caption><thead><tr>${columns.map((c) => html`<th scope="col"${c.num ? trusted(' class="num"') : ""}>${c.head}</th>`)}</tr></thead>
<tbody>${rows.map((r) => html`<tr>${columns.map((c) => html`<td${c.num ? trusted(' class="num"') : ""}>${c.cell(r)}</td>`)}</tr>`)}</tbody></table>`;
}

export const stateText = (state: string) => html`<span class="state-${state}">${state}</span>`;

export const when = (d: Date | string) => html`<time datetime="${new Date(d).toISOString()}">${new Date(d).toISOString().replace("T", " ").slice(0, 16)} UTC</time>`;
