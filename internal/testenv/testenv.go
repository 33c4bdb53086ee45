// Package testenv gives tests real services: a private PostgreSQL database
// per test, an isolated Redis database index per test, and private
// redis-server processes for tests that flush or restart Redis. It starts
// the machine's PostgreSQL and Redis (scripts/services.sh) when they are
// not listening. No mocks.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/storage"
)

var (
	servicesOnce sync.Once
	servicesErr  error
)

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ensureServices starts PostgreSQL and Redis once per test binary when
// nothing listens on their default ports.
func ensureServices(t testing.TB) {
	t.Helper()
	servicesOnce.Do(func() {
		if listening("127.0.0.1:5432") && listening("127.0.0.1:6379") {
			return
		}
		cmd := exec.Command("bash", filepath.Join(RepoRoot(), "scripts", "services.sh"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			servicesErr = fmt.Errorf("scripts/services.sh: %v\n%s", err, out)
		}
	})
	if servicesErr != nil {
		t.Fatal(servicesErr)
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PostgresURL returns the admin URL of the test server
// (WARDEN_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test).
func PostgresURL() string {
	if u := os.Getenv("WARDEN_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Postgres creates a fresh database for the test, migrates it and drops it
// when the test ends. It returns the open DB and its URL.
func Postgres(t testing.TB) (*storage.DB, string) {
	t.Helper()
	ensureServices(t)
	ctx := context.Background()
	admin, err := storage.Open(ctx, PostgresURL(), "")
	if err != nil {
		t.Fatalf("open admin database: %v", err)
	}
	name := "warden_t_" + randomSuffix()
	if err := admin.Gorm().Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create test database: %v", err)
	}
	url := replaceDB(PostgresURL(), name)
	db, err := storage.Open(ctx, url, "")
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Gorm().Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	return db, url
}

// SQLite opens a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), "", filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func replaceDB(url, name string) string {
	u, q, _ := strings.Cut(url, "?")
	if q != "" {
		q = "?" + q
	}
	if i := strings.LastIndexByte(u, '/'); i > len("postgres://") {
		u = u[:i]
	}
	return u + "/" + name + q
}

// Redis reserves a Redis database index (1-15) on the shared server for the
// test, flushes it before and after, and returns its URL. Indices are
// handed out through a lock key so parallel test binaries do not collide.
func Redis(t testing.TB) string {
	t.Helper()
	ensureServices(t)
	ctx := context.Background()
	ctl := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: 0})
	defer ctl.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for idx := 1; idx <= 15; idx++ {
			key := "warden:testenv:db:" + strconv.Itoa(idx)
			ok, err := ctl.SetNX(ctx, key, os.Getpid(), 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("redis: %v", err)
			}
			if !ok {
				continue
			}
			db := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: idx})
			db.FlushDB(ctx)
			t.Cleanup(func() {
				db.FlushDB(context.Background())
				db.Close()
				c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
				c.Del(context.Background(), key)
				c.Close()
			})
			return fmt.Sprintf("redis://127.0.0.1:6379/%d", idx)
		}
		if time.Now().After(deadline) {
			t.Fatal("no free Redis database index for the test")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RedisServer is a private redis-server process that a test may flush,
// stop and restart without disturbing anything else.
type RedisServer struct {
	Port int
	Args []string // extra redis-server arguments
	dir  string
	cmd  *exec.Cmd
}

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// StartRedisServer launches redis-server on a free port for this test.
// Extra redis-server arguments (e.g. --replicaof) go in args.
func StartRedisServer(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	ensureServices(t) // installs redis-server if missing
	port := freePort(t)
	r := &RedisServer{Port: port, dir: t.TempDir(), Args: args}
	r.Start(t)
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Start (re)starts the process on the same port.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir}, r.Args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	waitListening(t, r.Port)
}

// Stop kills the process.
func (r *RedisServer) Stop(t testing.TB) {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Eventually polls cond every 50 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PostgresServer is a private PostgreSQL cluster that a test may stop and
// restart. It runs as the postgres system user from the Debian binaries.
type PostgresServer struct {
	Port int
	dir  string
	bin  string
}

// URL is the server's connection URL (trust auth, database postgres).
func (p *PostgresServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// StartPostgresServer initialises a throw-away cluster on a free port. It
// skips the test where the PostgreSQL server binaries or root are missing.
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	ensureServices(t) // installs PostgreSQL if missing
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 || os.Geteuid() != 0 {
		t.Skip("needs root and Debian's PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
	}
	dir, err := os.MkdirTemp("", "warden-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &PostgresServer{Port: l.Addr().(*net.TCPAddr).Port, dir: dir, bin: filepath.Dir(bins[len(bins)-1])}
	l.Close()
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	if out, err := p.asPostgres("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start(t)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

func (p *PostgresServer) asPostgres(tool string, args ...string) ([]byte, error) {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, tool)}, args...)...).CombinedOutput()
}

// Start starts (or restarts) the cluster and waits until it accepts connections.
func (p *PostgresServer) Start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.Port, p.dir)
	if out, err := p.asPostgres("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

// Stop stops the cluster immediately, dropping every connection.
func (p *PostgresServer) Stop(t testing.TB) {
	p.asPostgres("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
}
