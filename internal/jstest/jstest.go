// Package jstest starts real nats-server instances with JetStream for tests:
// the same server oss2s3 embeds, listening on a free loopback port with its
// file store in a temporary directory.
package jstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a JetStream server for the test and shuts it down when the test
// ends. Its URL is ns.ClientURL().
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn runs a JetStream server whose file store is storeDir, so that a
// test can stop it and start another on the same store.
func StartIn(t testing.TB, storeDir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready in 10s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
