// Package reconcile owns full diffs of a task's source and destination.
package reconcile
