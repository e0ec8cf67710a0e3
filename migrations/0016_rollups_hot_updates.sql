-- usage_rollups keeps only the hour and day grains now (the user grains left it in 0013 and 0014),
-- and every batch the recorder writes updates some of their rows: about one per attribution in it
-- at each grain. The covering index (0001) includes the sums, so each such update wrote new entries
-- into it and none was HOT (none of 30,720 in the ingest bench, whose 96 live rows grew the index by
-- 4.5 MB). It was made so that spend queries would not read the heap pages the user-day rows
-- scattered the hour and day rows over; those rows are gone, and usage_rollups_key, which leads
-- with (grain, bucket), finds the same rows. Dropping an index reads nothing: its lock is brief.
DROP INDEX IF EXISTS "usage_rollups_cover";
--> statement-breakpoint
-- Half of each page free, as in the user tables (0014): a batch updates the rows of a page at once,
-- and their old versions are pruned only after it commits, so a page needs room for a second
-- version of all its rows for every update to stay HOT. Pages written from now on get it (the
-- hours still being written); existing pages, of past hours, are left as they are rather than
-- rewritten under a lock that would hold writes.
ALTER TABLE "usage_rollups" SET (fillfactor = 50);
