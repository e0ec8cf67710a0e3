ALTER TABLE "approvals" ADD COLUMN "requested_by_name" text;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "decided_by_name" text;