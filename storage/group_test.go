package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is an exec that records every statement's rows and can be held
// (to let calls queue up behind a batch in flight) or made to fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	hold    chan struct{} // when non-nil, the first batch waits for it
	started chan struct{} // closed when the first batch has begun
	bad     string        // a statement containing this row fails
}

func (r *recorder) exec(_ context.Context, rows []string) ([]string, error) {
	r.mu.Lock()
	first := len(r.batches) == 0
	r.batches = append(r.batches, slices.Clone(rows))
	r.mu.Unlock()
	if first && r.hold != nil {
		close(r.started)
		<-r.hold
	}
	if r.bad != "" && slices.Contains(rows, r.bad) {
		return nil, fmt.Errorf("constraint violated by %s", r.bad)
	}
	out := make([]string, len(rows))
	for i, v := range rows {
		out[i] = "done:" + v
	}
	return out, nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []int
	for _, b := range r.batches {
		n = append(n, len(b))
	}
	return n
}

func key(s string) string { return s }

// queue starts one do per row while the first statement is held, waits
// until they are all queued, and returns their answers once released.
func queueBehindHeld(t *testing.T, g *groupWriter[string, string], r *recorder, rows []string) (outs []string, errs []error) {
	t.Helper()
	outs, errs = make([]string, len(rows)), make([]error, len(rows))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); outs[0], errs[0] = g.do(context.Background(), rows[0]) }()
	<-r.started
	for i := 1; i < len(rows); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], errs[i] = g.do(context.Background(), rows[i]) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(g.calls) < len(rows)-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls queued", len(g.calls))
		}
		time.Sleep(time.Millisecond)
	}
	close(r.hold)
	wg.Wait()
	return outs, errs
}

func TestGroupWriterBatchesWhatQueuesBehindAStatement(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{})}
	g := newGroupWriter(1, 8, key, r.exec)
	defer g.close()
	rows := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	outs, errs := queueBehindHeld(t, g, r, rows)
	for i, row := range rows {
		if errs[i] != nil || outs[i] != "done:"+row {
			t.Errorf("%s: %q %v", row, outs[i], errs[i])
		}
	}
	// The first row ran alone (the writer was idle); the ten queued behind
	// it went as one batch of the maximum 8 and one of 2.
	if got := r.sizes(); !slices.Equal(got, []int{1, 8, 2}) {
		t.Errorf("batch sizes %v, want [1 8 2]", got)
	}
}

func TestGroupWriterNeverBatchesTheSameKeyTwice(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{})}
	g := newGroupWriter(1, 8, key, r.exec)
	defer g.close()
	outs, errs := queueBehindHeld(t, g, r, []string{"x", "a", "a", "b", "a"})
	for i := range outs {
		if errs[i] != nil || outs[i] == "" {
			t.Errorf("call %d: %q %v", i, outs[i], errs[i])
		}
	}
	for _, b := range r.batches {
		seen := map[string]bool{}
		for _, row := range b {
			if seen[row] {
				t.Fatalf("batch %v holds %s twice", b, row)
			}
			seen[row] = true
		}
	}
	if n := len(r.batches); n != 4 { // [x] [a b] [a] [a]
		t.Errorf("%d batches %v, want 4", n, r.batches)
	}
}

func TestGroupWriterFailedBatchFailsOnlyTheBadRow(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{}), bad: "poison"}
	g := newGroupWriter(1, 8, key, r.exec)
	defer g.close()
	rows := []string{"first", "a", "poison", "b"}
	outs, errs := queueBehindHeld(t, g, r, rows)
	for i, row := range rows {
		if row == "poison" {
			if errs[i] == nil {
				t.Error("the bad row succeeded")
			}
			continue
		}
		if errs[i] != nil || outs[i] != "done:"+row {
			t.Errorf("%s paid for the bad row: %q %v", row, outs[i], errs[i])
		}
	}
	// [first], the failed [a poison b], then one by one.
	if got := r.sizes(); !slices.Equal(got, []int{1, 3, 1, 1, 1}) {
		t.Errorf("statements %v", got)
	}
}

func TestGroupWriterSkipsCallersThatLeft(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{})}
	g := newGroupWriter(1, 8, key, r.exec)
	defer g.close()
	go g.do(context.Background(), "first")
	<-r.started
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := g.do(ctx, "gone"); errc <- err }()
	for len(g.calls) < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(r.hold)
	if out, err := g.do(context.Background(), "after"); err != nil || out != "done:after" {
		t.Fatalf("after: %q %v", out, err)
	}
	for _, b := range r.batches {
		if slices.Contains(b, "gone") {
			t.Fatalf("a row whose caller had left was written: %v", r.batches)
		}
	}
}

func TestGroupWriterCloseAnswersEveryone(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{})}
	g := newGroupWriter(1, 8, key, r.exec)
	firstErr := make(chan error)
	go func() { _, err := g.do(context.Background(), "first"); firstErr <- err }()
	<-r.started
	queued := make(chan error, 3)
	for _, row := range []string{"a", "b", "c"} {
		go func() { _, err := g.do(context.Background(), row); queued <- err }()
	}
	for len(g.calls) < 3 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { g.close(); close(closed) }()
	<-g.quit      // closing has begun…
	close(r.hold) // …while a statement is in flight: it finishes // the statement in flight finishes
	if err := <-firstErr; err != nil {
		t.Fatalf("in-flight write: %v", err)
	}
	<-closed
	for range 3 {
		select {
		case err := <-queued:
			if !errors.Is(err, errClosed) {
				t.Errorf("queued write after close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a queued caller hangs after close")
		}
	}
	if _, err := g.do(context.Background(), "late"); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v", err)
	}
}
