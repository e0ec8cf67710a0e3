DROP INDEX "alert_firings_once";--> statement-breakpoint
CREATE UNIQUE INDEX "alert_firings_once" ON "alert_firings" USING btree ("budget_id","period_start","kind","threshold","amount");