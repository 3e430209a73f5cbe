package mns_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/oss2s3/oss2s3/transfer/ingest/mns"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

func ExampleParseNotification() {
	doc := `{"events":[{"eventName":"ObjectCreated:PutObject","eventTime":"2026-11-24T08:00:00.000Z",
	  "oss":{"bucket":{"name":"src"},"object":{"key":"a/b.txt","size":1024}},"region":"cn-hangzhou"}]}`
	// OSS publishes the document Base64-encoded; a SIMPLIFIED push is
	// the message alone.
	body := base64.StdEncoding.EncodeToString([]byte(doc))
	d, err := mns.ParseNotification([]byte(body), "text/plain;charset=utf-8")
	if err != nil {
		fmt.Println("400:", err)
		return
	}
	r := d.Events[0]
	fmt.Println(r.OSS.Bucket.Name, r.OSS.Object.Key, ossevent.KindOf(r.EventName))

	xml := `<Notification xmlns="http://mns.aliyuncs.com/doc/v1/"><Message>` + body + `</Message>` +
		`<MessageMD5>0123456789ABCDEF0123456789ABCDEF</MessageMD5></Notification>`
	_, err = mns.ParseNotification([]byte(xml), "text/xml;charset=utf-8")
	fmt.Println("400:", err)
	// Output:
	// src a/b.txt converge
	// 400: XML notification: MessageMD5 0123456789ABCDEF0123456789ABCDEF does not match the message (MD5 FC785AA43C9998CD9B1F9716523C04DF)
}

// A sketch of the gateway's handler: verify, then parse, then answer as
// MNS expects (204 taken, 403 bad signature, other errors retried).
func ExampleVerifier() {
	allowed, err := mns.HostPattern("") // mns.cert_host_pattern from config; "" = Alibaba's hosts
	if err != nil {
		panic(err)
	}
	v := &mns.Verifier{AllowedHost: allowed}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mns", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := v.Verify(r.Context(), r.Method, r.RequestURI, r.Header, body); err != nil {
			status := http.StatusForbidden
			if errors.Is(err, mns.ErrCertFetch) {
				status = http.StatusInternalServerError // ours to fix; MNS pushes again
			}
			http.Error(w, err.Error(), status)
			return
		}
		doc, err := mns.ParseNotification(body, r.Header.Get("Content-Type"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = doc // queue every record, then:
		w.WriteHeader(http.StatusNoContent)
	})
}
