package ingestsink

import (
	"errors"
	"fmt"
	"testing"

	"github.com/oss2s3/oss2s3/handlers"
	"github.com/oss2s3/oss2s3/transfer/ingest"
)

// TestEveryRefusalHasItsAnswer: each way the Receiver refuses a request
// reaches handlers as the refusal of the same name, with its reason.
func TestEveryRefusalHasItsAnswer(t *testing.T) {
	t.Parallel()
	for w, want := range map[ingest.Why]handlers.Why{
		ingest.Malformed:       handlers.Malformed,
		ingest.TooManyRecords:  handlers.TooManyRecords,
		ingest.Unauthenticated: handlers.Unauthenticated,
		ingest.Forbidden:       handlers.Forbidden,
		ingest.NotVerifiable:   handlers.NotVerifiable,
		ingest.Unavailable:     handlers.Unavailable,
	} {
		err := Refusal(fmt.Errorf("wrapped: %w", &ingest.Refusal{Why: w, Reason: "because"}))
		var got *handlers.Refusal
		if !errors.As(err, &got) || got.Why != want || got.Reason != "because" {
			t.Errorf("ingest's %d: %#v, want handlers' %d", w, err, want)
		}
	}
	if len(Whys) != 6 {
		t.Errorf("%d refusals mapped, want 6: a new one needs its answer in handlers", len(Whys))
	}
	if other := errors.New("other"); Refusal(other) != other || Refusal(nil) != nil {
		t.Error("an error that is not a refusal changed on its way to handlers")
	}
}
