-- Spend queries over the hour and day grains read only this index: the user-day rows, far more
-- numerous, would otherwise scatter the few rows a month needs over thousands of heap pages.
CREATE INDEX IF NOT EXISTS "usage_rollups_cover" ON "usage_rollups" ("grain", "bucket")
  INCLUDE ("team", "project", "feature", "provider", "model", "api_key_id", "requests", "errors",
    "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
    "reasoning_tokens", "cost")
  WHERE "grain" <> 'user-day';
