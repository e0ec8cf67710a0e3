import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  // The gateway's tables, and those an integration keeps for itself.
  schema: ["./src/db/schema.ts", "./integrations/*/schema.ts"],
  out: "./migrations",
});
