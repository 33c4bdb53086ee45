package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinels are Redis Sentinel processes monitoring one primary under a
// master name, for failover tests.
type Sentinels struct {
	Master string
	Ports  []int
}

// StartSentinels starts n sentinels (Debian's redis-sentinel, or
// redis-server --sentinel) that monitor primary as master with the given
// quorum, declaring it down after one second without answers.
func StartSentinels(t testing.TB, master string, primary *RedisServer, n, quorum int) *Sentinels {
	t.Helper()
	ensureServices(t)
	bin, args := "redis-sentinel", []string{}
	if _, err := exec.LookPath(bin); err != nil {
		bin, args = "redis-server", []string{"--sentinel"}
	}
	s := &Sentinels{Master: master}
	for i := 0; i < n; i++ {
		port := freePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // sentinels rewrite their configuration
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 10000\n"+
			"sentinel parallel-syncs %s 1\n", port, dir, master, primary.Port, quorum, master, master, master)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{conf}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitListening(t, port)
		s.Ports = append(s.Ports, port)
	}
	return s
}

// URL is WARDEN_REDIS_URL's Sentinel form for database db.
func (s *Sentinels) URL(db int) string {
	addrs := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return fmt.Sprintf("redis-sentinel://%s/%d?master=%s", strings.Join(addrs, ","), db, s.Master)
}

// Primary asks the first sentinel that answers for the primary's address.
func (s *Sentinels) Primary(ctx context.Context) (string, error) {
	var last error
	for _, p := range s.Ports {
		c := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(p)})
		addr, err := c.GetMasterAddrByName(ctx, s.Master).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel knows %s: %v", s.Master, last)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t testing.TB, port int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if listening("127.0.0.1:" + strconv.Itoa(port)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %d", port)
}
