CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"team" text,
	"project" text,
	"feature" text,
	"user" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "ingest_source_secrets" (
	"id" text PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"secret_encrypted" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "ingest_sources" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ingest_sources_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "usage_events" (
	"source" text NOT NULL,
	"id" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"provider" text DEFAULT '' NOT NULL,
	"model" text DEFAULT '' NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"cached_input_tokens" bigint DEFAULT 0 NOT NULL,
	"cache_write_tokens" bigint DEFAULT 0 NOT NULL,
	"cache_write_1h_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"reasoning_tokens" bigint DEFAULT 0 NOT NULL,
	"service_tier" text DEFAULT 'standard' NOT NULL,
	"cost" bigint NOT NULL,
	"priced" boolean NOT NULL,
	"reported_cost" bigint,
	"latency_ms" integer,
	"status" text DEFAULT 'ok' NOT NULL,
	"team" text,
	"project" text,
	"feature" text,
	"user" text,
	"session" text,
	"api_key_id" text,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_id" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "usage_events_source_id_pk" PRIMARY KEY("source","id")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups" (
	"grain" text NOT NULL,
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
	"cost" numeric DEFAULT '0' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ingest_source_secrets" ADD CONSTRAINT "ingest_source_secrets_source_id_ingest_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."ingest_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_hash" ON "api_keys" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "ingest_source_secrets_source" ON "ingest_source_secrets" USING btree ("source_id") WHERE revoked_at is null;--> statement-breakpoint
CREATE INDEX "usage_events_ts_idx" ON "usage_events" USING btree ("ts");--> statement-breakpoint
CREATE UNIQUE INDEX "usage_rollups_key" ON "usage_rollups" USING btree ("grain","bucket","team","project","feature","user","provider","model","api_key_id");