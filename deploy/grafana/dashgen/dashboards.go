package main

// Each row starts a new line; its tiles fill it left to right by their
// span (24 is the full width) and wrap (board.row).

func overview() *board {
	return newBoard("oss2s3-overview", "oss2s3 / Overview",
		"OSS -> S3 replication at a glance: events in, copies out, lag, errors, the queue and the dead-letter queue.").
		row("Now",
			coloured(single("Replicas up", "Scrape targets of job oss2s3 that answer.", "short",
				q(`sum(up{job="oss2s3"})`, "")), "red", from(1, "green")).span(4),
			single("Jobs queued", "Jobs in the shared JetStream work queue (waiting or being copied).", "short",
				q(`sum(max by (task) (oss2s3_queue_jobs))`, "")).span(4),
			coloured(single("Oldest job", "Age of the oldest job in the work queue; alert OSS2S3QueueBacklog above 30 min.", "s",
				q(`max(oss2s3_queue_oldest_job_age_seconds)`, "")), "green", from(300, "orange"), from(1800, "red")).span(4),
			coloured(single("Dead letters", "Jobs that failed for good: GET /v1/dlq, then POST /v1/dlq/redrive.", "short",
				q(`sum(max by (task) (oss2s3_dead_letter_jobs))`, "")), "green", from(1, "red")).span(4),
			coloured(single("Lag SLO (1h)", "Share of changes copied within 60 s of their OSS event over the last hour; the SLO is 99%.", "percentunit",
				q(`sum(rate(oss2s3_end_to_end_lag_seconds_bucket{le=~"60|60.0"}[1h])) / sum(rate(oss2s3_end_to_end_lag_seconds_count[1h]))`, "")), "red", from(0.99, "green")).span(4),
			single("Copied (1h)", "Bytes written to S3 in the last hour.", "bytes",
				q(`sum(increase(oss2s3_copied_bytes_total[1h]))`, "")).span(4)).
		row("Events in",
			stacked(graph("Events by source", "Event records queued as jobs, per event source.", "ops",
				q(`sum by (source) (rate(oss2s3_events_received_total{result="queued"}[$__rate_interval]))`, "{{source}}"))).span(12),
			stacked(graph("Events by result", "Every event record received: queued, duplicate (re-sent), ignored, unrouted, rejected (bad signature or document), failed (queue unavailable).", "ops",
				q(`sum by (result) (rate(oss2s3_events_received_total[$__rate_interval]))`, "{{result}}"))).span(12)).
		row("Copies out",
			stacked(graph("Jobs by result", "Jobs finished by the workers of every replica.", "ops",
				q(`sum by (result) (rate(oss2s3_objects_total[$__rate_interval]))`, "{{result}}"))),
			stacked(graph("Throughput", "Bytes written to S3 per second, per task.", "Bps",
				q(`sum by (task) (rate(oss2s3_copied_bytes_total[$__rate_interval]))`, "{{task}}"))),
			graph("Copy duration", "Time to copy one object, from the source HEAD to S3's answer.", "s",
				quantiles("le", `oss2s3_copy_duration_seconds_bucket`, "$__rate_interval", "")...)).
		row("Lag and errors",
			graph("End-to-end lag", "From the OSS event to the destination holding the change.", "s",
				quantiles("le", `oss2s3_end_to_end_lag_seconds_bucket`, "$__rate_interval", "")...),
			graph("Failure ratio", "Jobs failed for good (dead-lettered) over jobs finished, per task; alert OSS2S3CopyFailureRatio above 5%.", "percentunit",
				q(`sum by (task) (rate(oss2s3_objects_total{result="failed"}[$__rate_interval])) / sum by (task) (rate(oss2s3_objects_total{result=~"copied|skipped|deleted|source_gone|failed"}[$__rate_interval]))`, "{{task}}")),
			graph("Retries and redeliveries", "Attempts that failed and will be retried, and jobs delivered again (retries, expired ack waits, crashed workers).", "ops",
				q(`sum(rate(oss2s3_objects_total{result="retried"}[$__rate_interval]))`, "retried"),
				q(`sum(rate(oss2s3_job_redeliveries_total[$__rate_interval]))`, "redelivered"))).
		row("Queue",
			graph("Queue depth", "Jobs in the work queue per task (the same on every replica: max), and jobs being worked on.", "short",
				q(`max by (task) (oss2s3_queue_jobs)`, "{{task}}"),
				q(`max(oss2s3_queue_unacked_jobs)`, "being copied")),
			graph("Oldest job age", "Age of the oldest job in the work queue.", "s",
				q(`max(oss2s3_queue_oldest_job_age_seconds)`, "oldest")),
			stacked(graph("Dead letters", "Jobs in the dead-letter stream, per task.", "short",
				q(`max by (task) (oss2s3_dead_letter_jobs)`, "{{task}}")))).
		row("Replicas",
			graph("Jobs in flight", "Jobs each replica is copying now (at most workers.concurrency).", "short",
				q(`sum by (instance) (oss2s3_jobs_in_flight)`, "{{instance}}")).span(6),
			graph("Memory budget used", "Part buffers in use over workers.memory_budget, per replica.", "percentunit",
				q(`oss2s3_memory_budget_used_bytes / oss2s3_memory_budget_bytes`, "{{instance}}")).span(6),
			graph("Parts in flight", "Multipart parts being transferred, per replica.", "short",
				q(`sum by (instance) (oss2s3_multipart_parts_in_flight)`, "{{instance}}")).span(6),
			graph("Resident memory", "Process resident memory, per replica.", "bytes",
				q(`process_resident_memory_bytes{job="oss2s3"}`, "{{instance}}"),
				q(`go_memstats_heap_inuse_bytes{job="oss2s3"}`, "heap {{instance}}")).span(6),
			graph("HTTP requests", "Gateway requests per route and status code.", "reqps",
				q(`sum by (route, code) (rate(oss2s3_http_requests_total[$__rate_interval]))`, "{{route}} {{code}}")).span(12),
			graph("HTTP latency p99", "Time to answer, per route.", "s",
				q(`histogram_quantile(0.99, sum by (le, route) (rate(oss2s3_http_request_duration_seconds_bucket[$__rate_interval])))`, "{{route}}")).span(12))
}

func task() *board {
	return newBoard("oss2s3-task", "oss2s3 / Task",
		"One replication task (or several): events, copies, lag, queue and dead letters.").
		taskVariable("oss2s3_objects_total").
		row("Now",
			single("Jobs queued", "Jobs of the task in the work queue.", "short",
				q(`sum(max by (task) (oss2s3_queue_jobs{task=~"$task"}))`, "")).span(6),
			coloured(single("Dead letters", "Failed for good: GET /v1/dlq?task=<task>.", "short",
				q(`sum(max by (task) (oss2s3_dead_letter_jobs{task=~"$task"}))`, "")), "green", from(1, "red")).span(6),
			coloured(single("Events queued (6h)", "Jobs queued from events in the last 6 hours; alert OSS2S3NoEvents when it is 0.", "short",
				q(`sum(increase(oss2s3_jobs_queued_total{task=~"$task"}[6h]))`, "")), "red", from(1, "green")).span(6),
			single("Last reconcile", "Time since the task's last successful reconcile run.", "s",
				q(`time() - max(oss2s3_reconcile_last_success_timestamp_seconds{task=~"$task"})`, "")).span(6)).
		row("Flow",
			graph("Jobs queued", "Jobs queued from events, per task.", "ops",
				q(`sum by (task) (rate(oss2s3_jobs_queued_total{task=~"$task"}[$__rate_interval]))`, "{{task}}")),
			stacked(graph("Jobs by result", "Jobs finished, per result.", "ops",
				q(`sum by (result) (rate(oss2s3_objects_total{task=~"$task"}[$__rate_interval]))`, "{{result}}"))),
			graph("Throughput", "Bytes written to S3 per second.", "Bps",
				q(`sum by (task) (rate(oss2s3_copied_bytes_total{task=~"$task"}[$__rate_interval]))`, "{{task}}"))).
		row("Latency",
			graph("End-to-end lag", "From the OSS event to the destination holding the change.", "s",
				quantiles("le", `oss2s3_end_to_end_lag_seconds_bucket{task=~"$task"}`, "$__rate_interval", "")...),
			graph("Within 60 s", "Share of changes copied within 60 s of their event (SLO 99%).", "percentunit",
				q(`sum by (task) (rate(oss2s3_end_to_end_lag_seconds_bucket{task=~"$task",le=~"60|60.0"}[1h])) / sum by (task) (rate(oss2s3_end_to_end_lag_seconds_count{task=~"$task"}[1h]))`, "{{task}}")),
			graph("Copy duration", "Time to copy one object.", "s",
				quantiles("le", `oss2s3_copy_duration_seconds_bucket{task=~"$task"}`, "$__rate_interval", "")...)).
		row("Trouble",
			graph("Queue depth", "Jobs of the task in the work queue.", "short",
				q(`max by (task) (oss2s3_queue_jobs{task=~"$task"})`, "{{task}}")),
			graph("Dead letters", "Jobs of the task in the dead-letter stream.", "short",
				q(`max by (task) (oss2s3_dead_letter_jobs{task=~"$task"})`, "{{task}}")),
			graph("Retries and redeliveries", "Failed attempts to be retried, and jobs delivered again.", "ops",
				q(`sum by (task) (rate(oss2s3_objects_total{task=~"$task",result="retried"}[$__rate_interval]))`, "retried {{task}}"),
				q(`sum by (task) (rate(oss2s3_job_redeliveries_total{task=~"$task"}[$__rate_interval]))`, "redelivered {{task}}")))
}

func reconcile() *board {
	return newBoard("oss2s3-reconcile", "oss2s3 / Reconcile",
		"Full diffs of source and destination: when they ran, what they found, what they queued.").
		taskVariable("oss2s3_reconcile_runs_total").
		row("Now",
			single("Since the last success", "Per task; alert OSS2S3ReconcileOverdue at twice the schedule.", "s",
				q(`time() - max by (task) (oss2s3_reconcile_last_success_timestamp_seconds{task=~"$task"})`, "{{task}}")).height(5).span(12),
			single("Running", "Reconcile runs in progress, per task.", "short",
				q(`max by (task) (oss2s3_reconcile_running{task=~"$task"})`, "{{task}}")).height(5).span(6),
			coloured(single("Failed runs (24h)", "Reconcile runs that failed in the last day.", "short",
				q(`sum(increase(oss2s3_reconcile_runs_total{task=~"$task",result="failed"}[24h]))`, "")), "green", from(1, "red")).height(5).span(6)).
		row("Progress",
			rightAxis(graph("Running runs", "Per task, the part of its running reconcile run done (its listing, then its copies), and the time left at the run's recent rate (none while unknown). Several replicas may report a run: max.", "percentunit",
				q(`max by (task) (oss2s3_reconcile_progress_ratio{task=~"$task"})`, "done {{task}}"),
				q(`max by (task) (oss2s3_reconcile_eta_seconds{task=~"$task"})`, "left {{task}}")), "B", "s").span(24)).
		row("Runs",
			graph("Runs by result", "Reconcile runs finished.", "short",
				q(`sum by (task, result) (increase(oss2s3_reconcile_runs_total{task=~"$task"}[1h]))`, "{{task}} {{result}}")),
			graph("Run duration", "Time from the start of a run to its last shard.", "s",
				quantiles("le, task", `oss2s3_reconcile_duration_seconds_bucket{task=~"$task"}`, "6h", "{{task}}")...),
			graph("Objects by result", "Objects the diffs listed, found missing, different or extraneous, queued and deleted.", "ops",
				q(`sum by (result) (rate(oss2s3_reconcile_objects_total{task=~"$task"}[$__rate_interval]))`, "{{result}}")),
			graph("Found by the last hour's runs", "Objects missing or different in the destination: each is an event that was lost or a copy that went wrong.", "short",
				q(`sum by (task, result) (increase(oss2s3_reconcile_objects_total{task=~"$task",result=~"missing|different|extraneous"}[1h]))`, "{{task}} {{result}}")).span(24))
}
