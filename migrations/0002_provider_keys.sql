CREATE TABLE "provider_keys" (
	"provider" text PRIMARY KEY NOT NULL,
	"key_encrypted" text NOT NULL,
	"hint" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "allowed_providers" text[];--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "allowed_models" text[];