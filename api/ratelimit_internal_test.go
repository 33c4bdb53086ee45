package api

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestLimiterHoldsWhenRedisIsDown: with Redis unreachable the limiter keeps
// enforcing each budget in process (it used to allow everything), refuses
// with the refusing spend's index and a wait, and lets a budget refill.
func TestLimiterHoldsWhenRedisIsDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	l := &Limiter{rdb: rdb}
	ctx := context.Background()
	ip := spend{"general", "192.0.2.1", 2} // burst 2
	cred := spend{"cred", "key_1", 1000}   // never the one refusing here
	for i := 0; i < 2; i++ {
		if ok, _, _ := l.Allow(ctx, ip, cred); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait, by := l.Allow(ctx, cred, ip)
	if ok {
		t.Fatal("third request in the same instant allowed: the limiter failed open")
	}
	if by != 1 || wait <= 0 || wait > 500*time.Millisecond {
		t.Errorf("refused by %d after %v, want spend 1 and a wait within one interval", by, wait)
	}
	// All or nothing: the refused request spent nothing from cred.
	other := spend{"general", "192.0.2.2", 2}
	if ok, _, _ := l.Allow(ctx, other, cred); !ok {
		t.Error("another client's budget was affected")
	}
	time.Sleep(wait + 10*time.Millisecond)
	if ok, _, _ := l.Allow(ctx, ip); !ok {
		t.Error("budget did not refill after the wait")
	}
}

// TestLocalGCRABoundsMemory: a flood of distinct clients does not grow the
// fallback's table past its cap.
func TestLocalGCRABoundsMemory(t *testing.T) {
	var g localGCRA
	now := time.Now()
	sp := []spend{{"general", "", 1}}
	for i := 0; i < maxLocalBuckets+10; i++ {
		g.allow([]string{"k" + string(rune(i))}, sp, []int{0}, now)
	}
	if n := len(g.tats); n > maxLocalBuckets {
		t.Errorf("%d buckets kept, cap %d", n, maxLocalBuckets)
	}
}
