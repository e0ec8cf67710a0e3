CREATE TABLE "job_ticks" (
	"job" text PRIMARY KEY NOT NULL,
	"last_tick" timestamp with time zone NOT NULL
);
