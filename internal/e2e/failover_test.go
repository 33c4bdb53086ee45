package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

// TestChaosSentinelFailover: WARDEN_REDIS_URL in its Sentinel form (one
// primary, one replica, three sentinels with quorum 2). Probes are
// submitted and run continuously; the primary is killed mid-load; the
// sentinels promote the replica and the API and worker follow it. Every
// job the API accepted completes exactly once: tasks the dead primary had
// not yet replicated are re-enqueued from PostgreSQL by the reconciler.
func TestChaosSentinelFailover(t *testing.T) {
	ctx := context.Background()
	primary := testenv.StartRedisServer(t)
	replica := testenv.StartRedisServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	sentinels := testenv.StartSentinels(t, "warden", primary, 3, 2)
	testenv.Eventually(t, 30*time.Second, "the sentinels to see the replica", func() bool {
		c := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(sentinels.Ports[0])})
		defer c.Close()
		r, err := c.Replicas(ctx, sentinels.Master).Result()
		return err == nil && len(r) == 1
	})

	s := newStack(t, true, withRedis(sentinels.URL(0)))
	org := s.org("acme")
	var (
		mu      sync.Mutex
		ids     []string
		refused []string
	)
	accepted := func() int { mu.Lock(); defer mu.Unlock(); return len(ids) }
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, m := s.postJSON("/v1/diagnostics/probe", map[string]any{"hold_ms": 50}, withKey(org))
			mu.Lock()
			if code == 202 {
				ids = append(ids, m["job_id"].(string))
			} else {
				refused = append(refused, fmt.Sprint(code, m))
			}
			mu.Unlock()
		}
	}()
	testenv.Eventually(t, 60*time.Second, "20 accepted jobs before the failover", func() bool { return accepted() >= 20 })
	var completedBefore int64
	s.db.Gorm().Model(&records.Job{}).Where("status = ?", records.JobCompleted).Count(&completedBefore)
	if completedBefore == 0 {
		t.Log("no job had completed before the failover yet")
	}

	primary.Stop(t)
	killedAt, atKill := time.Now(), accepted()
	want := "127.0.0.1:" + strconv.Itoa(replica.Port)
	testenv.Eventually(t, 60*time.Second, "the sentinels to promote the replica", func() bool {
		addr, err := sentinels.Primary(ctx)
		return err == nil && addr == want
	})
	promoted := time.Since(killedAt)
	testenv.Eventually(t, 60*time.Second, "20 more accepted jobs after the promotion", func() bool { return accepted() >= atKill+20 })
	close(stop)
	<-done

	mu.Lock()
	all := append([]string(nil), ids...)
	mu.Unlock()
	s.waitStatus(all, records.JobCompleted, 180*time.Second)
	s.assertCompletedOnce(all)
	t.Logf("%d jobs accepted (%d before the kill), %d refused %v; promotion %.1fs after the kill",
		len(all), atKill, len(refused), refused, promoted.Seconds())
	if code, m := s.getJSON("/health"); code != 200 || m["redis"] != "connected" {
		t.Errorf("health after the failover: %d %v", code, m)
	}
}
