package jstest_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/oss2s3/oss2s3/internal/jstest"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNoAdvertiseKeepsClientsOnTheirURLs: a client of a two-node cluster
// learns the other node's URL from the server, unless the nodes are told
// not to advertise; then it knows only the URL it was given (what a bed
// with proxies in front of the nodes needs).
func TestNoAdvertiseKeepsClientsOnTheirURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noAdvertise bool
	}{
		{"ClientsDiscoverTheOtherNodeByDefault", false},
		{"ClientsDiscoverNothingWithNoAdvertise", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := jstest.Node{Name: "a", Port: freePort(t), ClusterPort: freePort(t), StoreDir: t.TempDir(), NoAdvertise: tc.noAdvertise}
			b := jstest.Node{Name: "b", Port: freePort(t), ClusterPort: freePort(t), StoreDir: t.TempDir(), NoAdvertise: tc.noAdvertise}
			a.Routes, b.Routes = []int{b.ClusterPort}, []int{a.ClusterPort}
			var servers []*server.Server
			for _, n := range []jstest.Node{a, b} {
				ns, err := jstest.StartNode(n)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
				servers = append(servers, ns)
			}
			if !testkit.Eventually(10*time.Second, 10*time.Millisecond, func() bool {
				return servers[0].NumRoutes() > 0 && servers[1].NumRoutes() > 0
			}) {
				t.Fatal("the nodes formed no route in 10s")
			}
			discovered := func() []string {
				nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", a.Port), nats.NoReconnect())
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				return nc.DiscoveredServers()
			}
			if tc.noAdvertise {
				if got := discovered(); len(got) != 0 {
					t.Fatalf("client discovered %v; want nothing", got)
				}
				return
			}
			if !testkit.Eventually(10*time.Second, 20*time.Millisecond, func() bool { return len(discovered()) > 0 }) {
				t.Fatal("client discovered no other node in 10s")
			}
		})
	}
}
