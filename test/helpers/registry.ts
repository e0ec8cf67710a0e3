import { createRegistry } from "../../commands/registry.ts";
import { telegramLinkCommand } from "../../integrations/telegram/link-command.ts";

/** The commands of a gateway with every integration composed in: the built-in ones and Telegram's. Nothing here makes a link code. */
export const gatewayRegistry = () => createRegistry([telegramLinkCommand({ create: () => Promise.reject(new Error("no link code is made here")) })]);
