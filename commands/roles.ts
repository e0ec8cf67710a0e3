import type { Command } from "./command.ts";

export const ROLE_ORDER = ["viewer", "requester", "approver", "admin"] as const;
export type Role = (typeof ROLE_ORDER)[number];

/** The least role each command needs: anyone can look, raising needs a requester, deciding an approver, changing an admin. */
export const REQUIRED_ROLE: Record<Command["verb"], Role> = {
  spend: "viewer",
  "budget.list": "viewer",
  "budget.show": "viewer",
  "alerts.recent": "viewer",
  help: "viewer",
  "budget.raise": "requester",
  "alerts.mute": "requester",
  "alerts.unmute": "requester",
  "budget.approve": "approver",
  "budget.reject": "approver",
  "budget.set": "admin",
  "budget.pause": "admin",
  "budget.resume": "admin",
  subscribe: "admin",
  unsubscribe: "admin",
  // A code opens spend in the scope to whichever chat uses it: as much as subscribing a channel.
  "telegram-link": "admin",
};

export const allows = (role: Role, needed: Role) => ROLE_ORDER.indexOf(role) >= ROLE_ORDER.indexOf(needed);
