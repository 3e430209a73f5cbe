package cloudevents_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/oss2s3/oss2s3/transfer/ingest/cloudevents"
	"github.com/oss2s3/oss2s3/transfer/ingest/ossevent"
)

func ExampleParse() {
	body := `{"specversion":"1.0","id":"58F9FF2D3DF792092E12044C","source":"acs.oss",
	  "type":"oss:ObjectCreated:PutObject","subject":"acs:oss:cn-hangzhou:1234:src/a/b.txt",
	  "time":"2026-11-24T08:00:00.000Z","aliyunaccountid":"1234","aliyunregionid":"cn-hangzhou",
	  "data":{"eventName":"ObjectCreated:PutObject","eventTime":"2026-11-24T08:00:00.000Z",
	    "oss":{"bucket":{"name":"src"},"object":{"key":"a/b.txt","size":1024,"eTag":"9E107D9D372BB6826BD81D3542A419D6"}},
	    "region":"cn-hangzhou"}}`
	ev, err := cloudevents.Parse([]byte(body))
	if err != nil {
		fmt.Println("400:", err)
		return
	}
	r := ev.Record
	fmt.Println(ev.ID, r.OSS.Bucket.Name, r.OSS.Object.Key, r.OSS.Object.Size, ossevent.KindOf(r.EventName))

	_, err = cloudevents.Parse([]byte(`{"specversion":"1.0","id":"x","source":"acs.ecs","type":"ecs:Instance:Started","data":{}}`))
	fmt.Println("400:", err)
	// Output:
	// 58F9FF2D3DF792092E12044C src a/b.txt 1024 converge
	// 400: source "acs.ecs" is not "acs.oss": only OSS events are accepted here
}

func ExampleAuth_Check() {
	auth := cloudevents.Auth{
		Header:     "x-api-key",
		APIKeys:    []string{"current-key", "next-key"},
		BasicUsers: map[string][]string{"eventbridge": {"s3cret"}},
	}
	h := http.Header{}
	fmt.Println(auth.Check(h))
	h.Set("X-Api-Key", "next-key")
	fmt.Println(auth.Check(h))
	h.Set("X-Api-Key", "guess")
	err := auth.Check(h)
	fmt.Println(errors.Is(err, cloudevents.ErrBadCredentials))
	fmt.Println(cloudevents.Auth{}.Check(h))
	// Output:
	// missing credentials: want an API key in header X-Api-Key or Basic authorization
	// <nil>
	// true
	// no API key or basic-auth user configured for the EventBridge endpoint
}
