-- Budgets and spend queries about a few users read only those users' user-day rows: without this
-- index they read every user-day row of the period, by far the most numerous rows (with 500
-- per-user budgets among 10,000 over a 1-million-event ledger, evaluation took about 3 times as long).
CREATE INDEX IF NOT EXISTS "usage_rollups_user_day" ON "usage_rollups" ("user", "bucket")
  INCLUDE ("team", "project", "feature", "provider", "model", "api_key_id", "cost")
  WHERE "grain" = 'user-day';
