//go:build torch

// Command inproc times the demo digits CNN's forward pass in process (no
// runner, no API), for bench/predict.sh to print beside the end-to-end
// figures: the same model file `warden dev` registered, loaded with
// runner.Load as the runner loads it, torchClassifier.Predict on one
// held-out digit (and on a batch), after a warm-up, on one locked OS thread.
//
//	inproc -data-dir DIR [-threads 1 -warmup 50 -n 300 -batch 32]
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

func main() {
	dataDir := flag.String("data-dir", "", "WARDEN_DATA_DIR of the `warden dev` that trained the demo models")
	threads := flag.Int("threads", 1, "libtorch intra-op threads (as WARDEN_TORCH_THREADS)")
	warmup := flag.Int("warmup", 50, "predictions before timing")
	n := flag.Int("n", 300, "timed predictions")
	batch := flag.Int("batch", 32, "also time forwards of this many digits at once (0: skip)")
	flag.Parse()
	if err := run(*dataDir, *threads, *warmup, *n, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "inproc:", err)
		os.Exit(1)
	}
}

func run(dataDir string, threads, warmup, n, batch int) error {
	if dataDir == "" {
		return fmt.Errorf("-data-dir is required")
	}
	runtime.LockOSThread() // one libgomp pool, as the runner's predictions
	torch.SetThreads(threads)
	set, err := demo.LoadOrTrain(demo.CacheDir(dataDir), "")
	if err != nil {
		return err
	}
	m := set.Digits
	cfg, bad := modelspec.ParseConfig(m.Type, m.Metadata)
	if bad != nil {
		return fmt.Errorf("metadata: %v", bad)
	}
	clf, _, err := runner.Load(m.ModelPath, cfg, torch.CPU, true)
	if err != nil {
		return err
	}
	defer clf.Close()
	_, test, err := demo.Digits()
	if err != nil {
		return err
	}
	shape := make([]int, 0, 1+len(test.Shape))
	shape = append(shape, 1)
	for _, s := range test.Shape {
		shape = append(shape, int(s))
	}
	ctx := context.Background()
	forward := func(i, k int) error {
		size := test.SampleSize()
		lo := i % (test.N() - k + 1)
		x := attacks.Batch{Data: test.X[lo*size : (lo+k)*size], Shape: append([]int{k}, shape[1:]...)}
		_, err := clf.Predict(ctx, x)
		return err
	}
	p50, p99, mean, err := timeIt(warmup, n, func(i int) error { return forward(i, 1) })
	if err != nil {
		return err
	}
	fmt.Printf("INPROC threads=%d batch=1 n=%d p50_ms=%.3f p99_ms=%.3f mean_ms=%.3f", threads, n, p50, p99, mean)
	if batch > 1 {
		b50, b99, bmean, err := timeIt(warmup, n, func(i int) error { return forward(i, batch) })
		if err != nil {
			return err
		}
		fmt.Printf(" batch%d_p50_ms=%.3f batch%d_p99_ms=%.3f batch%d_mean_ms=%.3f", batch, b50, batch, b99, batch, bmean)
	}
	fmt.Println()
	return nil
}

// timeIt runs f warmup times, then n timed times: p50, p99 and mean in ms.
func timeIt(warmup, n int, f func(int) error) (p50, p99, mean float64, err error) {
	for i := 0; i < warmup; i++ {
		if err := f(i); err != nil {
			return 0, 0, 0, err
		}
	}
	ds := make([]float64, n)
	var sum float64
	for i := range ds {
		s := time.Now()
		if err := f(warmup + i); err != nil {
			return 0, 0, 0, err
		}
		ds[i] = float64(time.Since(s)) / float64(time.Millisecond)
		sum += ds[i]
	}
	sort.Float64s(ds)
	at := func(q float64) float64 { return ds[max(0, int(math.Ceil(q*float64(n)))-1)] }
	return at(0.5), at(0.99), sum / float64(n), nil
}
