-- The `user-day` grain moves out of usage_rollups into a table of its own, as `user-month` did in
-- 0013. It is the busiest grain: a batch of 1,000 events from 1,000 users updates about 1,000 of its
-- rows. In usage_rollups every such update wrote new entries into the wide key index and the
-- user-day covering index (it includes the cost), so none was HOT; here no index holds a sum, so
-- with room in each page (fillfactor 50, below) the updates are HOT (measured: about half the cost
-- of upserting 1,000 user-day rows there, PostgreSQL 15).
CREATE TABLE "usage_user_days" (
	"bucket" timestamp with time zone NOT NULL,
	"team" text DEFAULT '' NOT NULL,
	"project" text DEFAULT '' NOT NULL,
	"feature" text DEFAULT '' NOT NULL,
	"user" text DEFAULT '' NOT NULL,
	"provider" text DEFAULT '' NOT NULL,
	"model" text DEFAULT '' NOT NULL,
	"api_key_id" text DEFAULT '' NOT NULL,
	"requests" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	"unpriced" bigint DEFAULT 0 NOT NULL,
	"input_tokens" numeric DEFAULT '0' NOT NULL,
	"cached_input_tokens" numeric DEFAULT '0' NOT NULL,
	"cache_write_tokens" numeric DEFAULT '0' NOT NULL,
	"output_tokens" numeric DEFAULT '0' NOT NULL,
	"reasoning_tokens" numeric DEFAULT '0' NOT NULL,
	"cost" numeric DEFAULT '0' NOT NULL,
	CONSTRAINT "usage_user_days_pk" PRIMARY KEY("bucket","user","team","project","feature","provider","model","api_key_id")
) WITH (fillfactor = 50);
--> statement-breakpoint
-- Budgets and spend queries about a few users, and erasure, look those users up here; it holds
-- no sum, so it does not stop updates being HOT.
CREATE INDEX "usage_user_days_user" ON "usage_user_days" USING btree ("user","bucket");
--> statement-breakpoint
-- The rows move as they are (numeric sums, unchanged), then leave usage_rollups with their index.
INSERT INTO "usage_user_days" ("bucket", "team", "project", "feature", "user", "provider", "model", "api_key_id",
  "requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
  "reasoning_tokens", "cost")
SELECT "bucket", "team", "project", "feature", "user", "provider", "model", "api_key_id",
  "requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
  "reasoning_tokens", "cost"
FROM "usage_rollups" WHERE "grain" = 'user-day';
--> statement-breakpoint
DELETE FROM "usage_rollups" WHERE "grain" = 'user-day';
--> statement-breakpoint
DROP INDEX IF EXISTS "usage_rollups_user_day";
--> statement-breakpoint
-- Half of each page free, here and for user-month rows from now on: a batch updates every row of
-- the pages its users' rows share at once, and the old versions are pruned only after it commits,
-- so each page needs room for a second version of all its rows for every update to stay HOT
-- (at fillfactor 75 only about a third of them were, in the ingest bench).
ALTER TABLE "usage_user_months" SET (fillfactor = 50);
