package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
)

// TestBenchWorkerScale is the horizontal-scaling benchmark behind
// `make bench` (bench/scale.sh): the same batch of CPU-bound verifications
// (C2PA signature chain, EXIF, pixel forensics of a signed JPEG) drained by
// one `warden worker` process, then by two, each process taking one job at
// a time, against the same API, PostgreSQL and Redis. It prints the ratio
// of the two drain times; speed is measured, never asserted. Skipped
// unless WARDEN_BENCH=1.
func TestBenchWorkerScale(t *testing.T) {
	if os.Getenv("WARDEN_BENCH") != "1" {
		t.Skip("set WARDEN_BENCH=1 (bench/scale.sh)")
	}
	n := envInt(t, "WARDEN_BENCH_SCALE_N", 60)
	s := newStack(t, false, func(c *config.Config) {
		c.RateGeneral, c.RateUpload, c.RateCredential = 1e6, 1e6, 1e6
	})
	org := s.org("scale")
	img := fixture(t, "media/c2pa/testdata/C.jpg")
	submit := func(k int) []string {
		ids := make([]string, k)
		for i := range ids {
			code, m := s.upload("C.jpg", img, nil, withKey(org))
			if code != 200 && code != 202 {
				t.Fatalf("upload: %d %v", code, m)
			}
			ids[i] = m["job_id"].(string)
		}
		return ids
	}
	drain := func(workers int) time.Duration {
		var procs []func()
		for w := 0; w < workers; w++ {
			cmd := s.workerProc(fmt.Sprintf("worker-%d-of-%d", w+1, workers), "--concurrency", "1")
			procs = append(procs, func() { cmd.Process.Kill(); cmd.Wait() })
		}
		defer func() {
			for _, stop := range procs {
				stop()
			}
		}()
		// Warm-up: every process has started and served a job.
		s.waitStatus(submit(2*workers), records.JobCompleted, 120*time.Second)
		start := time.Now()
		ids := submit(n)
		s.waitStatus(ids, records.JobCompleted, 3*time.Minute)
		return time.Since(start)
	}
	one := drain(1)
	two := drain(2)
	t.Logf("%d verifications: one worker %.2fs (%.1f jobs/s), two workers %.2fs (%.1f jobs/s)",
		n, one.Seconds(), float64(n)/one.Seconds(), two.Seconds(), float64(n)/two.Seconds())
	fmt.Printf("BENCH_SCALE n=%d one_s=%.3f two_s=%.3f ratio=%.2f\n", n, one.Seconds(), two.Seconds(), one.Seconds()/two.Seconds())
}
