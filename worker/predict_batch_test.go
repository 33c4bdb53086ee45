package worker

import (
	"testing"
	"time"

	"github.com/wardenlab/warden/predict"
)

func pending(id string) pendingPrediction {
	return pendingPrediction{req: predict.Request{ID: id}, got: time.Now()}
}

// TestCollect: a batch takes what is queued (up to the maximum) at once; a
// lone prediction on an idle model never waits; on a busy model the batch
// waits up to the window for company, and no longer.
func TestCollect(t *testing.T) {
	p := &predictions{window: 50 * time.Millisecond, max: 4}
	b := &batcher{ch: make(chan pendingPrediction, 16)}
	for _, id := range []string{"b", "c"} {
		b.ch <- pending(id)
	}
	start := time.Now()
	if got := p.collect(b, pending("a"), false); len(got) != 3 || got[0].req.ID != "a" || got[2].req.ID != "c" {
		t.Fatalf("queued: %d predictions", len(got))
	}
	if got := p.collect(b, pending("alone"), false); len(got) != 1 {
		t.Fatalf("alone: %d predictions", len(got))
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("an idle model's batch waited %v", d)
	}
	// Busy: company arriving within the window joins, up to the maximum.
	go func() {
		time.Sleep(5 * time.Millisecond)
		for _, id := range []string{"x", "y", "z", "overflow"} {
			b.ch <- pending(id)
		}
	}()
	if got := p.collect(b, pending("w"), true); len(got) != 4 {
		t.Fatalf("busy: %d predictions, want the maximum 4", len(got))
	}
	if got := p.collect(b, pending("next"), false); len(got) != 2 || got[1].req.ID != "overflow" {
		t.Fatalf("the overflow waits for the next batch: %d", len(got))
	}
	// Busy but nobody comes: the window bounds the wait.
	start = time.Now()
	if got := p.collect(b, pending("lonely"), true); len(got) != 1 {
		t.Fatalf("lonely: %d", len(got))
	}
	if d := time.Since(start); d < 45*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("waited %v for a 50ms window", d)
	}
	// Batching off.
	p.max = 1
	b.ch <- pending("q")
	if got := p.collect(b, pending("solo"), true); len(got) != 1 {
		t.Fatalf("max 1: %d", len(got))
	}
	// A closed queue (the worker stopping) ends the batch.
	p.max = 4
	close(b.ch)
	if got := p.collect(b, pending("last"), true); len(got) != 2 {
		t.Fatalf("closed: %d (want last + the queued q)", len(got))
	}
}
