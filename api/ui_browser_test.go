package api_test

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// chromiumPath finds Debian's chromium. Without one the browser test
// skips, unless WARDEN_TEST_REQUIRE_CHROMIUM is set: then it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WARDEN_TEST_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not found and WARDEN_TEST_REQUIRE_CHROMIUM is set (apt-get install chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium; set WARDEN_TEST_REQUIRE_CHROMIUM to make this a failure)")
	return ""
}

// artifactsDir is where the browser test saves its screenshots:
// $WARDEN_TEST_ARTIFACTS/ui, else a temporary directory of the test.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if root := os.Getenv("WARDEN_TEST_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, "ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestUIBrowser drives headless Chromium through the results UI: it
// signs in with the API key, sees the jobs list go live, watches a job
// inserted through storage appear and then its progress change without a
// reload, opens an attack whose six images all decode (naturalWidth > 0),
// a verification with its C2PA chain and an analysis whose framed report
// draws its chart and image, with no Content-Security-Policy violation or
// script error on the way. Each step saves a screenshot.
func TestUIBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	shots := artifactsDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	h := newAPIHarness(t, func(c *config.Config) {
		c.PublicURL = base // the browser's origin, which POST /ui/login must come from
		c.RateGeneral, c.RateToken = 1000, 1000
	})
	srv := httptest.NewUnstartedServer(h.handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	org := h.org("ui-browser")
	attack, _ := seedAttack(t, h, org.OrgID)
	queued := seedJob(t, h, org.OrgID, jobs.Probe.Name, nil, nil)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()
	if err := chromedp.Do(ctx); err != nil { // start the browser and its tab
		t.Fatalf("start chromium: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
	)
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			text := m.String()
			if m.IsException() || strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Refused to") {
				mu.Lock()
				problems = append(problems, text)
				mu.Unlock()
			}
		}
	}()

	step := 0
	shot := func(name string) {
		t.Helper()
		step++
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		for try := 0; err != nil && try < 10; try++ { // a page that has just loaded may not be laid out yet
			time.Sleep(200 * time.Millisecond)
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, strconv.Itoa(step)+"-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// wait evaluates a JavaScript condition until it is true (Runtime.evaluate,
	// which the page's CSP does not govern).
	wait := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				shot("failed")
				t.Fatalf("%s: %q not true (%v)", what, expr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	do("sign in", chromedp.Navigate(base+"/ui"), chromedp.WaitVisible(chromedp.ID("org_id")),
		chromedp.SendKeys(chromedp.ID("org_id"), org.OrgID), chromedp.SendKeys(chromedp.ID("api_key"), org.APIKey))
	shot("login")
	do("submit", chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("jobs")))
	wait("the list goes live", `document.getElementById("live").dataset.state === "live"`)
	wait("the seeded jobs are listed", `!!document.getElementById("job-`+attack.ID+`") && !!document.getElementById("job-`+queued.ID+`")`)
	shot("jobs")

	fresh := seedJob(t, h, org.OrgID, jobs.Probe.Name, nil, nil)
	row := `document.getElementById("job-` + fresh.ID + `")`
	wait("the new job appears on top", row+` !== null && document.querySelector("#jobs tbody tr").id === "job-`+fresh.ID+`"`)
	shot("new-job")
	if _, ok, err := h.db.StartJob(context.Background(), fresh.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := h.db.SetProgress(context.Background(), fresh.ID, 60, "attacking"); err != nil {
		t.Fatal(err)
	}
	wait("the job's progress updates", row+`.querySelector(".status").textContent === "`+records.JobInProgress+`" && `+
		row+`.querySelector(".pct").textContent === "60%" && `+row+`.querySelector(".stage").textContent === "attacking"`)
	shot("progress")

	do("open the attack", chromedp.Click(chromedp.CSS(`#job-`+attack.ID+` a`)), chromedp.WaitVisible(chromedp.ID("samples")))
	wait("the attack's images decode", `(() => { const imgs = [...document.querySelectorAll("img.art")];
		return imgs.length === 6 && imgs.every(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0); })()`)
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[...document.querySelectorAll("img.art")].map(i => i.naturalWidth)`))
	if err != nil || len(widths) != 6 {
		t.Fatalf("image widths %v %v", widths, err)
	}
	for _, w := range widths {
		if w != 8 {
			t.Errorf("an image is %d pixels wide, want the stored 8", w)
		}
	}
	shot("attack")

	verify := seedJob(t, h, org.OrgID, jobs.VerifyMedia.Name, verifyResultWithChain(), nil)
	do("open the verification", chromedp.Navigate(base+"/ui/jobs/"+verify.ID), chromedp.WaitVisible(chromedp.ID("ingredients")))
	shot("verification")

	// A running job's page follows it and shows the result once it completes.
	do("open the running job", chromedp.Navigate(base+"/ui/jobs/"+fresh.ID), chromedp.WaitVisible(chromedp.ID("job-status")))
	wait("the job page is live", `document.querySelector("#job-status .pct").textContent === "60%"`)
	if err := h.db.SetProgress(context.Background(), fresh.ID, 90, "writing"); err != nil {
		t.Fatal(err)
	}
	wait("the job page's progress updates", `document.querySelector("#job-status .pct").textContent === "90%" && document.querySelector("#job-status .stage").textContent === "writing"`)
	if done, err := h.db.CompleteJob(context.Background(), fresh.ID, storage.Completion{Result: records.Result{Label: "ok", Data: `{"echo":"probe done"}`}}); !done || err != nil {
		t.Fatal(done, err)
	}
	wait("the completed job's page shows its result", `document.getElementById("status").textContent === "completed" && !!document.querySelector("pre.raw") && document.querySelector("pre.raw").textContent.includes("probe done")`)
	shot("completed")

	analysis := seedJob(t, h, org.OrgID, jobs.Analysis.Name, jobs.AnalysisResult{AISModelID: "m1", AnalysisType: "EVA",
		Verdict: jobs.Verdict{Vulnerable: true, Severity: "high", Summary: "accuracy falls to 0.1 at ε = 0.03"},
		Curves:  []jobs.Curve{{Name: "Accuracy under attack", XLabel: "ε", YLabel: "accuracy", X: []float64{0, 0.01, 0.03}, Y: []float64{0.9, 0.5, 0.1}}},
		Samples: []jobs.Sample{{Caption: "sample 0", Images: map[string]string{"original": "0_original.png"}}}},
		map[string][]byte{"0_original.png": greyPNG(t, 8, 8, func(x, y int) uint8 { return uint8(30 * x) })})
	do("open the analysis", chromedp.Navigate(base+"/ui/jobs/"+analysis.ID), chromedp.WaitVisible(chromedp.ID("report")))
	wait("the report draws its chart and image", `(() => { const d = document.getElementById("report").contentDocument;
		const img = d && d.querySelector("figure img");
		return !!d && !!d.querySelector("svg.chart polyline") && !!img && img.complete && img.naturalWidth === 8; })()`)
	shot("analysis")

	time.Sleep(200 * time.Millisecond) // the last console messages
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser console: %s", p)
	}
}
