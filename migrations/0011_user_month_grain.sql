-- The `user-month` grain: one row per user and UTC month, with no other attribution, so a user's
-- month (and `spend this-month by user`, the hottest query) is one small read rather than every
-- user-day row of the month. Filled from the user-day grain, which holds every user's sums
-- (including those of events retention has since deleted).
INSERT INTO "usage_rollups" ("grain", "bucket", "user", "requests", "errors", "unpriced", "input_tokens",
  "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost")
SELECT 'user-month', date_trunc('month', "bucket", 'UTC'), "user", sum("requests"), sum("errors"), sum("unpriced"),
  sum("input_tokens"), sum("cached_input_tokens"), sum("cache_write_tokens"), sum("output_tokens"),
  sum("reasoning_tokens"), sum("cost")
FROM "usage_rollups" WHERE "grain" = 'user-day'
GROUP BY 2, 3
ON CONFLICT ("grain", "bucket", "team", "project", "feature", "user", "provider", "model", "api_key_id") DO NOTHING;
--> statement-breakpoint
-- A month's user rows read from this index alone (a few thousand entries), never from the heap
-- pages the busy user-day rows share.
CREATE INDEX IF NOT EXISTS "usage_rollups_user_month" ON "usage_rollups" ("bucket", "user")
  INCLUDE ("requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens",
    "output_tokens", "reasoning_tokens", "cost")
  WHERE "grain" = 'user-month';
