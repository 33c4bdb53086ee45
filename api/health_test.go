package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/queue"
)

// TestHealthReportsSandbox: /health lists what each worker published about
// its model runners' confinement.
func TestHealthReportsSandbox(t *testing.T) {
	h := newAPIHarness(t)
	rdb := h.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	ctx := context.Background()
	state := `{"worker":"w1:42","layers":["namespaces (user, mount, network, pid, ipc, uts)","landlock (ABI 7: filesystem, TCP, signals)"],"tenant_models":true}`
	if err := rdb.Set(ctx, queue.SandboxKeyPrefix+"w1:42", state, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	res := h.do(http.MethodGet, "/health", nil)
	code, body := res.Code, res.Body
	if code != http.StatusOK {
		t.Fatalf("health: %d %v", code, body)
	}
	sb, ok := body["sandbox"].([]any)
	if !ok || len(sb) != 1 {
		t.Fatalf("sandbox: %v", body["sandbox"])
	}
	w := sb[0].(map[string]any)
	if w["worker"] != "w1:42" || w["tenant_models"] != true || len(w["layers"].([]any)) != 2 {
		t.Errorf("sandbox entry %v", w)
	}
}
