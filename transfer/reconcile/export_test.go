package reconcile

// SetReportChunk makes report messages flush every n bytes of lines until
// the returned function restores the default.
func SetReportChunk(n int) (restore func()) {
	old := reportChunk
	reportChunk = n
	return func() { reportChunk = old }
}

// Group is group, for the tests of how cuts make pieces.
var Group = group
