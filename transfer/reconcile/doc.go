// Package reconcile owns full diffs of a task's source and destination:
// the diff itself (two sorted listings marched in lock step, a pure
// decision of what differs, copy jobs queued for it) and the service that
// runs diffs across replicas (runs, their shards on the work queue, the
// copy tallies, the reports and the schedules), keeping its state in
// JetStream assets it creates through the handle it is given.
//
// Where things live:
//
//   - The diff: options.go (modes, verify), diff.go (Diff, Run, RunRange),
//     runner.go (the march's handler), check.go (HEADs and content reads),
//     compare.go (the decision).
//   - Listing: march.go (the merge-join, ranges), split.go (cutting a
//     range), sides.go (a task's listers and the prefixes a run lists,
//     and the interfaces they are made from), listers.go (OSS and S3),
//     xmllist.go (the page parser), prefixlist.go (prefix lists read
//     from a file or an object at each run's start).
//   - The service: service.go (Service, its config and JetStream assets),
//     runs.go (start a run, read its state), coordinate.go (sum a run's
//     shards, end it, adopt it), shards.go (run a shard, its checkpoints),
//     tallies.go (what a run's copy jobs did), reports.go (the report
//     stream), lastsuccess.go (the last-success gauge), schedule.go
//     (cron).
package reconcile
