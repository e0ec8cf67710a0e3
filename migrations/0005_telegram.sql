CREATE TABLE "telegram_links" (
	"code_hash" text PRIMARY KEY NOT NULL,
	"scope" jsonb NOT NULL,
	"kinds" text[] NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"used_by_chat" bigint
);
--> statement-breakpoint
CREATE TABLE "telegram_prompts" (
	"chat_id" bigint NOT NULL,
	"message_id" bigint NOT NULL,
	"budget_id" text NOT NULL,
	"user_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"answered_at" timestamp with time zone,
	CONSTRAINT "telegram_prompts_chat_id_message_id_pk" PRIMARY KEY("chat_id","message_id")
);
--> statement-breakpoint
CREATE TABLE "telegram_updates" (
	"bot_id" bigint NOT NULL,
	"update_id" bigint NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "telegram_updates_bot_id_update_id_pk" PRIMARY KEY("bot_id","update_id")
);
--> statement-breakpoint
ALTER TABLE "telegram_prompts" ADD CONSTRAINT "telegram_prompts_budget_id_budgets_id_fk" FOREIGN KEY ("budget_id") REFERENCES "public"."budgets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "telegram_links_expires_at" ON "telegram_links" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "telegram_prompts_expires_at" ON "telegram_prompts" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "telegram_updates_received_at" ON "telegram_updates" USING btree ("received_at");