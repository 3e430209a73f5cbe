package handlers

import (
	"net"

	"github.com/labstack/echo/v4"
)

// clientIP is how the gateway names a client in its logs. With no trusted
// proxies it is the peer's address: X-Forwarded-For and X-Real-IP are
// whatever the client wrote (issue 14: a rejection was logged as coming
// from an address taken from a header). With trusted proxies (the load
// balancers in front of the gateway), X-Forwarded-For is read from the
// right, skipping the addresses of those proxies, and the first address
// that is not one of them is the client. Nothing else is trusted: echo's
// default trust of loopback, link-local and private addresses is off, so a
// client on the same network cannot name itself anybody.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
