-- The hour and day grains (usage_rollups) leave the recorder's write as the user grains did in
-- 0015: a write now only inserts its events and queues its batch, and a fold adds the queued
-- batches to every grain at once. A batch queued before this migration is already in the hour and
-- day grains (the write added it there) and not yet in the user grains: it is folded here into the
-- user grains only, so that nothing queued from now on is half in the rollups. The queue is locked
-- first, so no write commits a batch into it while this runs (writes wait for it: the fold reads a
-- second or so of writes on a busy ledger, nothing on an idle one).
LOCK TABLE "usage_fold_pending" IN ACCESS EXCLUSIVE MODE;
--> statement-breakpoint
WITH "claimed" AS (
	DELETE FROM "usage_fold_pending" RETURNING "batch"
),
"e" AS (
	SELECT * FROM "usage_events" WHERE "fold_batch" = ANY(ARRAY(SELECT "batch" FROM "claimed"))
),
"days" AS (
	INSERT INTO "usage_user_days" AS r ("bucket", "user", "team", "project", "feature", "provider", "model", "api_key_id",
		"requests", "errors", "unpriced", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost")
	SELECT date_trunc('day', "ts", 'UTC'), coalesce("user", ''), coalesce("team", ''), coalesce("project", ''), coalesce("feature", ''),
		"provider", "model", coalesce("api_key_id", ''), count(*), count(*) FILTER (WHERE "status" <> 'ok'), count(*) FILTER (WHERE NOT "priced"),
		sum("input_tokens"), sum("cached_input_tokens"), sum("cache_write_tokens"), sum("output_tokens"), sum("reasoning_tokens"), sum("cost")
	FROM "e" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
	ON CONFLICT ("bucket", "user", "team", "project", "feature", "provider", "model", "api_key_id") DO UPDATE SET
		"requests" = r."requests" + excluded."requests", "errors" = r."errors" + excluded."errors", "unpriced" = r."unpriced" + excluded."unpriced",
		"input_tokens" = r."input_tokens" + excluded."input_tokens", "cached_input_tokens" = r."cached_input_tokens" + excluded."cached_input_tokens",
		"cache_write_tokens" = r."cache_write_tokens" + excluded."cache_write_tokens", "output_tokens" = r."output_tokens" + excluded."output_tokens",
		"reasoning_tokens" = r."reasoning_tokens" + excluded."reasoning_tokens", "cost" = r."cost" + excluded."cost"
)
INSERT INTO "usage_user_months" AS r ("bucket", "user", "requests", "errors", "unpriced", "input_tokens", "cached_input_tokens",
	"cache_write_tokens", "output_tokens", "reasoning_tokens", "cost")
SELECT date_trunc('month', "ts", 'UTC'), coalesce("user", ''), count(*), count(*) FILTER (WHERE "status" <> 'ok'), count(*) FILTER (WHERE NOT "priced"),
	sum("input_tokens"), sum("cached_input_tokens"), sum("cache_write_tokens"), sum("output_tokens"), sum("reasoning_tokens"), sum("cost")
FROM "e" GROUP BY 1, 2
ON CONFLICT ("bucket", "user") DO UPDATE SET
	"requests" = r."requests" + excluded."requests", "errors" = r."errors" + excluded."errors", "unpriced" = r."unpriced" + excluded."unpriced",
	"input_tokens" = r."input_tokens" + excluded."input_tokens", "cached_input_tokens" = r."cached_input_tokens" + excluded."cached_input_tokens",
	"cache_write_tokens" = r."cache_write_tokens" + excluded."cache_write_tokens", "output_tokens" = r."output_tokens" + excluded."output_tokens",
	"reasoning_tokens" = r."reasoning_tokens" + excluded."reasoning_tokens", "cost" = r."cost" + excluded."cost";
--> statement-breakpoint
-- A new name for the queue, whose batches now mean "in no grain yet": a gateway of the build before
-- (one still running beside an upgraded one) adds its writes to the hour and day grains itself and
-- would queue them here to be added again; under the old name its write fails instead of counting
-- twice (docs/operations.md, "Upgrading several gateways"). Renaming reads nothing.
ALTER TABLE "usage_fold_pending" RENAME TO "usage_rollup_queue";
