package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// StartFake starts gofakes3 with an in-memory backend on 127.0.0.1 over plain
// HTTP and returns it with a function that stops it.
//
// gofakes3 stores aws-chunked framing as the object body, so its client sends
// checksums only when an operation requires them (WhenRequired). Over plain
// HTTP the SDK also cannot stream a non-seekable body (an OSS GET stream)
// with these settings unless the caller adds
// v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware to APIOptions and
// sets ContentLength. Use StartVersity for anything that must behave like S3.
func StartFake() (*Server, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen for fake s3: %w", err)
	}
	faker := gofakes3.New(s3mem.New())
	srv := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = srv.Close()
			<-served //nolint:errcheck // http.ErrServerClosed after Close: nothing to report
		})
	}

	s := &Server{
		Endpoint:  "http://" + ln.Addr().String(),
		Region:    Region,
		AccessKey: "FAKEACCESSKEY",
		SecretKey: "FAKESECRETKEY",
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	s.Client, err = NewClient(context.Background(), s.Endpoint, s.AccessKey, s.SecretKey, hc,
		aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}
