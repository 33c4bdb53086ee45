package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/wardenlab/warden/config"
)

// RequireS3Env makes testenv.S3 fail, instead of skipping, when the S3
// server cannot be built (make test sets it).
const RequireS3Env = "WARDEN_TEST_REQUIRE_S3"

// S3Server is a real S3-compatible server (SeaweedFS's weed, built by
// scripts/s3-setup) on loopback ports, private to one test, with a bucket
// made for that test. Tests reach it as Warden does: through
// WARDEN_BLOB_URL and the access keys (Configure).
type S3Server struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Bucket    string
	// Client is an admin client of the server, for what a test does
	// beside Warden (a tenant's own upload to its import folder, listing
	// what Warden left in the bucket).
	Client *minio.Client
	cmd    *exec.Cmd
	log    string // the server's output
}

var (
	weedOnce sync.Once
	weedPath string
	weedErr  error
)

// weedBinary finds weed (WARDEN_WEED_BIN, or where scripts/s3-setup puts
// it), building it once per test binary when it is missing.
func weedBinary() (string, error) {
	weedOnce.Do(func() {
		if p := os.Getenv("WARDEN_WEED_BIN"); p != "" {
			weedPath = p
			return
		}
		dir := os.Getenv("WARDEN_S3_BIN_DIR")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				weedErr = err
				return
			}
			dir = filepath.Join(home, ".cache", "warden", "bin")
		}
		// The script returns at once when the binary of its version is there.
		cmd := exec.Command("bash", filepath.Join(RepoRoot(), "scripts", "s3-setup"))
		cmd.Env = append(os.Environ(), "WARDEN_S3_BIN_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			weedErr = fmt.Errorf("scripts/s3-setup: %v\n%s", err, out)
			return
		}
		weedPath = filepath.Join(dir, "weed")
	})
	return weedPath, weedErr
}

// freePorts reserves n distinct loopback ports (released just before the
// server binds them).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// S3 starts an S3 server for the test and makes a fresh bucket in it. It
// skips the test when the server cannot be built, unless
// WARDEN_TEST_REQUIRE_S3 is set: then it fails. A server that was built
// but does not start always fails the test.
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := weedBinary()
	if err != nil {
		if os.Getenv(RequireS3Env) != "" {
			t.Fatalf("S3 server (%s is set): %v", RequireS3Env, err)
		}
		t.Skipf("no S3 server (set %s to fail instead): %v", RequireS3Env, err)
	}
	dir, err := os.MkdirTemp("", "warden-s3-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := freePorts(t, 8)
	s := &S3Server{Endpoint: "127.0.0.1:" + strconv.Itoa(p[0]), AccessKey: "warden-test-" + randomSuffix(),
		SecretKey: randomSuffix() + randomSuffix(), log: filepath.Join(dir, "weed.log")}
	s.cmd = exec.Command(bin, "server", "-s3", "-filer",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+dir,
		"-s3.port="+strconv.Itoa(p[0]), "-s3.port.grpc="+strconv.Itoa(p[1]),
		"-master.port="+strconv.Itoa(p[2]), "-master.port.grpc="+strconv.Itoa(p[3]),
		"-volume.port="+strconv.Itoa(p[4]), "-volume.port.grpc="+strconv.Itoa(p[5]),
		"-filer.port="+strconv.Itoa(p[6]), "-filer.port.grpc="+strconv.Itoa(p[7]),
		"-filer.localSocket="+filepath.Join(dir, "filer.sock"), "-s3.localSocket="+filepath.Join(dir, "s3.sock"),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=16",
		"-volume.preStopSeconds=0")
	// The server's admin identity; nothing else of the test's environment.
	s.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
	s.cmd.Dir = dir
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Its data is thrown away: no graceful stop (weed takes over 10 s
		// to stop on SIGTERM). It leaves Unix sockets named by port in /tmp.
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		for _, port := range p {
			if socks, _ := filepath.Glob(fmt.Sprintf("/tmp/seaweedfs-*-%d.sock", port)); len(socks) > 0 {
				for _, f := range socks {
					os.Remove(f)
				}
			}
		}
	})
	if s.Client, err = minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath}); err != nil {
		t.Fatal(err)
	}
	s.Bucket = "warden-" + randomSuffix()
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	// Ready once an object can be written: the S3 gateway answers bucket
	// requests seconds before its filer has registered with the master.
	for {
		err = s.Client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
		if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			_, err = s.Client.PutObject(ctx, s.Bucket, "ready", bytes.NewReader([]byte("ok")), 2, minio.PutObjectOptions{})
		}
		if err == nil {
			err = s.Client.RemoveObject(ctx, s.Bucket, "ready", minio.RemoveObjectOptions{})
		}
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("weed exited: %v\n%s", s.cmd.ProcessState, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("S3 server not ready after 90s: %v\n%s", err, s.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("S3 server (weed) at %s ready in %v", s.Endpoint, time.Since(start).Round(time.Millisecond))
	return s
}

// URL is the WARDEN_BLOB_URL of the test's bucket under prefix ("" for
// none).
func (s *S3Server) URL(prefix string) string {
	u := "s3://" + s.Bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&secure=false&path_style=true"
}

// Configure is a NewServices option: blobs go to the test's bucket.
func (s *S3Server) Configure(c *config.Config) {
	c.BlobURL, c.S3AccessKey, c.S3SecretKey, c.S3SessionToken = s.URL(""), s.AccessKey, s.SecretKey, ""
}

// NewBucket makes another bucket on the server and returns its name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "warden-" + randomSuffix()
	if err := s.Client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// Keys lists every object of the test's bucket.
func (s *S3Server) Keys(t testing.TB) []string {
	t.Helper()
	var keys []string
	for o := range s.Client.ListObjects(context.Background(), s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// logTail is the end of the server's output.
func (s *S3Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
