// Package reconcile owns full diffs of a task's source and destination: a
// streaming merge-join of the OSS and S3 listings in byte order, the exact
// comparison of the objects both hold, and the runs (modes, progress, the
// one-run-per-task lock, the report) that turn a diff into copy jobs and,
// in sync mode, deletes.
package reconcile
