-- The user grains (usage_user_days, usage_user_months) leave the recorder's write. A batch of
-- 1,000 events from 1,000 users upserted ~2,000 of their rows, over half of the statement's time
-- in Postgres; now the write tags its events with a fold batch and queues that batch here, in the
-- same transaction, and a fold (src/ledger/fold.ts) adds many queued batches to the user grains at
-- once, deleting their queue rows in its own one statement: each user's rows are upserted once per
-- fold, not once per batch, and a fold that dies leaves its batches queued. Reads of the user
-- grains add the events of the batches still queued, so they stay exact.
CREATE SEQUENCE "usage_fold_batch";
--> statement-breakpoint
CREATE TABLE "usage_fold_pending" (
	"batch" bigint PRIMARY KEY NOT NULL
);
--> statement-breakpoint
-- NULL for every event written before this migration: all of them are in the user grains already.
ALTER TABLE "usage_events" ADD COLUMN "fold_batch" bigint;
--> statement-breakpoint
-- A fold, and a read's unfolded tail, find a batch's events here (new entries only ever go at its right edge).
-- Partial, so that on an existing ledger (every row NULL) it is built at once instead of holding
-- writes while it reads every event; `fold_batch = any(...)` implies the predicate, so reads use it.
CREATE INDEX "usage_events_fold_batch" ON "usage_events" USING btree ("fold_batch") WHERE "fold_batch" IS NOT NULL;
