import type { CommandHelp } from "../../src/cli/help.ts";

/** `tollgate teams-package`'s help, kept apart from botbuilder so `tollgate help` does not load it. */
export const teamsHelp: Record<string, CommandHelp> = {
  "teams-package": {
    summary: "build the Teams app package to upload",
    usage: ["teams-package --bot-id GUID [--out tollgate-teams.zip] [--app-version 1.0.1] [--domain tollgate.example.com]"],
    notes: ["--bot-id is the bot's Microsoft app id (MicrosoftAppId). Upload the zip in Teams: Apps → Manage your apps → Upload an app."],
    examples: ["teams-package --bot-id 2f1a6c3e-8d4b-4f0a-9e7c-1b2d3e4f5a6b --domain tollgate.example.com"],
  },
};
