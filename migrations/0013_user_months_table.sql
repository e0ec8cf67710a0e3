-- The `user-month` grain moves out of usage_rollups into a table of its own. Every batch the
-- recorder writes updates about one user-month row per user in it; in usage_rollups each such
-- update wrote new entries in the covering indexes (they include the sums), so none was HOT. Here
-- the only index is the primary key, which no update changes, and fillfactor 75 leaves room in
-- each page for the new row versions, so the updates are HOT.
CREATE TABLE "usage_user_months" (
	"bucket" timestamp with time zone NOT NULL,
	"user" text DEFAULT '' NOT NULL,
	"requests" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	"unpriced" bigint DEFAULT 0 NOT NULL,
	"input_tokens" numeric DEFAULT '0' NOT NULL,
	"cached_input_tokens" numeric DEFAULT '0' NOT NULL,
	"cache_write_tokens" numeric DEFAULT '0' NOT NULL,
	"output_tokens" numeric DEFAULT '0' NOT NULL,
	"reasoning_tokens" numeric DEFAULT '0' NOT NULL,
	"cost" numeric DEFAULT '0' NOT NULL,
	CONSTRAINT "usage_user_months_bucket_user_pk" PRIMARY KEY("bucket","user")
) WITH (fillfactor = 75);
--> statement-breakpoint
-- The rows move as they are (numeric sums, unchanged), then leave usage_rollups with their index.
INSERT INTO "usage_user_months" ("bucket", "user", "requests", "errors", "unpriced", "input_tokens",
  "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost")
SELECT "bucket", "user", "requests", "errors", "unpriced", "input_tokens", "cached_input_tokens",
  "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost"
FROM "usage_rollups" WHERE "grain" = 'user-month';
--> statement-breakpoint
DELETE FROM "usage_rollups" WHERE "grain" = 'user-month';
--> statement-breakpoint
DROP INDEX IF EXISTS "usage_rollups_user_month";
