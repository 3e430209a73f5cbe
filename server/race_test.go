//go:build race

package main

// raceEnabled: the test binary, and so a child process started from it,
// runs with the race detector, whose shadow memory adds to the RSS.
const raceEnabled = true
