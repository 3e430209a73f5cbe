package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/oss2s3/oss2s3/internal/ossemu"
	"github.com/oss2s3/oss2s3/internal/s3test"
	"github.com/oss2s3/oss2s3/internal/testkit"
)

// TestStatusPageInARealBrowser drives the status page in a real headless
// Chromium (Debian's chromium, through chromedp): sign in with an admin
// token, watch a running reconcile's progress move, see a dead letter
// whose key is a script rendered as text (no dialog opens), redrive it,
// and find the object copied. The page's screenshot is saved where the
// log says ($OSS2S3_SCREENSHOT, or the temporary directory).
func TestStatusPageInARealBrowser(t *testing.T) {
	t.Parallel()
	browser := tool(t, "chromium", "chromium", "chromium-browser", "google-chrome")
	b := newBed(t, s3test.StartVersity(t), 2)
	b.extraConfig = "admin:\n  tokens: [\"" + e2eAdminToken + "\"]\n"
	b.writeConfig(t, 2)
	b.start(t)

	// A dead letter whose key is a script.
	const key = "<script>alert(1)</script>"
	for _, op := range []string{"HeadObject", "GetObjectMeta", "GetObject"} {
		b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: op, Bucket: e2eSrc, Key: key, Status: http.StatusForbidden, Code: "AccessDenied"})
	}
	if _, err := b.emu.PutObject(e2eSrc, key, []byte("copied after the redrive"), nil); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "the dead letter", func() bool {
		_, data := adminDo(t, b, http.MethodGet, "/v1/dlq", e2eAdminToken, "")
		return strings.Contains(string(data), `"count":1`)
	})
	// A listing long enough to watch: 40,000 keys (the bucket's stat
	// counts them), each page 400 ms.
	b.emu.SetGenerated(e2eSrc, ossemu.Generated{Count: 40000})
	b.emu.InjectFault(ossemu.Fault{API: "OSS", Op: "ListObjectsV2", Bucket: e2eSrc, Latency: 400 * time.Millisecond})

	ctx, cancel := browserContext(t, browser)
	defer cancel()
	var dialogs atomic.Int32
	chromedp.ListenTarget(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
			t.Errorf("a dialog opened: %q", d.Message)
		}
	})
	base := "http://" + b.addr
	browse(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", e2eAdminToken, chromedp.ByQuery),
		chromedp.Click("#sign-in", chromedp.ByQuery),
		chromedp.WaitVisible("#runs", chromedp.ByQuery))

	id := startRun(t, b, "report", `{"mode":"report"}`)
	moved := watchProgress(t, ctx, base, id)
	t.Logf("the run's listing, as the page showed it: %v", moved)

	// The dead letter's key is text on the page, not markup.
	var keyText string
	var scripts int
	browse(t, ctx, "read the dead letter",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("tr.dead-letter", chromedp.ByQuery),
		chromedp.Text("tr.dead-letter td.key", &keyText, chromedp.ByQuery),
		chromedp.Evaluate(`document.scripts.length`, &scripts))
	if keyText != key || scripts != 0 {
		t.Fatalf("dead letter key shown as %q, %d script elements; want the key as text and none", keyText, scripts)
	}
	saveScreenshot(t, ctx)

	// Redrive it, the fault cleared: the object is copied.
	b.emu.ClearFaults()
	var flash string
	browse(t, ctx, "redrive",
		chromedp.Click("tr.dead-letter button.redrive", chromedp.ByQuery),
		chromedp.WaitVisible("#flash", chromedp.ByQuery),
		chromedp.Text("#flash", &flash, chromedp.ByQuery))
	if !strings.Contains(flash, "1 dead letter(s) put back") {
		t.Fatalf("after the redrive the page says %q", flash)
	}
	testkit.WaitFor(t, 30*time.Second, "the redriven object at the destination", func() bool {
		_, err := b.s3.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(e2eDst), Key: aws.String(key)})
		return err == nil
	})
	if dialogs.Load() != 0 {
		t.Fatal("a script ran")
	}
}

// browserContext starts a headless Chromium for the test.
func browserContext(t *testing.T, path string) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

// browse runs the browser's actions, failing the test with what was being
// done.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser, %s: %v", what, err)
	}
}

// watchProgress reloads the page until run id is done, and returns the
// listing counts it showed while the run was listing: they must grow,
// and the run must show a percentage and an ETA on the way.
func watchProgress(t *testing.T, ctx context.Context, base, id string) []int64 {
	t.Helper()
	row := `tr[data-run="` + id + `"]`
	var seen []int64
	var sawPercent, sawETA bool
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var listed, phase, percent, eta string
		browse(t, ctx, "read the run's progress",
			chromedp.Navigate(base+"/ui/"),
			chromedp.WaitVisible(row, chromedp.ByQuery),
			chromedp.Text(row+" td.listed", &listed, chromedp.ByQuery),
			chromedp.Text(row+" td.phase", &phase, chromedp.ByQuery),
			chromedp.Text(row+" .percent", &percent, chromedp.ByQuery),
			chromedp.Text(row+" td.eta", &eta, chromedp.ByQuery))
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.Split(listed, "/")[0]), 10, 64)
		if phase == "listing" {
			seen = append(seen, n)
			sawPercent = sawPercent || strings.HasSuffix(percent, "%") && strings.Contains(listed, "/ 40000")
			sawETA = sawETA || (eta != "–" && eta != "")
		}
		if phase == "done" {
			if percent != "100.0%" || !strings.HasPrefix(listed, "40000") {
				t.Fatalf("the run done shows %s, listed %s", percent, listed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not done in 2 minutes: %s %s", id, phase, listed)
		}
		time.Sleep(300 * time.Millisecond)
	}
	grew := false
	for i := 1; i < len(seen); i++ {
		grew = grew || seen[i] > seen[i-1]
	}
	if !grew || !sawPercent || !sawETA {
		t.Fatalf("the run's progress did not move on the page: listed %v, a percentage of 40000 %v, an ETA %v", seen, sawPercent, sawETA)
	}
	return seen
}

// saveScreenshot writes the page's screenshot and says where.
func saveScreenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	var png []byte
	browse(t, ctx, "screenshot", chromedp.FullScreenshot(&png, 100))
	path := os.Getenv("OSS2S3_SCREENSHOT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "oss2s3-status-page.png")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("status page screenshot: %s (%d bytes)", path, len(png))
}
