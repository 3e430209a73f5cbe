// Package jstest starts real nats-server instances with JetStream for tests:
// the same server oss2s3 embeds, listening on a free loopback port with its
// file store in a temporary directory.
package jstest

import (
	"fmt"
	"net/url"
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
	return StartAt(t, storeDir, -1)
}

// StartAt runs a JetStream server on a given loopback port (-1: any free
// one), for a test whose client was pointed at the port before the server
// was up.
func StartAt(t testing.TB, storeDir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready in 30s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Node is one node of a JetStream cluster on loopback, for a test that runs
// each node in a process of its own, so that one can be killed alone.
type Node struct {
	Name        string `json:"name"`
	Port        int    `json:"port"`         // client port
	ClusterPort int    `json:"cluster_port"` // route port
	Routes      []int  `json:"routes"`       // route ports of the other nodes
	StoreDir    string `json:"store_dir"`
	// NoAdvertise keeps the node from telling clients the client URLs of
	// the other nodes, so that clients reconnect only to the URLs they
	// were given: a test that puts proxies between clients and nodes
	// keeps every connection going through them.
	NoAdvertise bool `json:"no_advertise,omitempty"`
}

// StartNode starts n and waits until it accepts clients; the caller shuts
// it down. JetStream itself is usable once a meta leader is elected, when
// enough nodes have joined.
func StartNode(n Node) (*server.Server, error) {
	opts := &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.Port,
		JetStream:  true,
		StoreDir:   n.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		Cluster:    server.ClusterOpts{Name: "oss2s3-test", Host: "127.0.0.1", Port: n.ClusterPort, NoAdvertise: n.NoAdvertise},
	}
	for _, p := range n.Routes {
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server %s: %w", n.Name, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats-server %s not ready in 30s", n.Name)
	}
	return ns, nil
}
